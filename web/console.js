/*
 * web/console.js - the console's only script (compiled into repctl).
 * Every page works without it; with it, the main content is refreshed every
 * 2 s from the server (the same HTML, without the layout) and forms are
 * posted in the background, their answer shown in place.
 */
(function () {
	'use strict';
	var main = document.getElementById('content');
	var flashEl = document.getElementById('flash');
	var busy = false;

	function flash(text, ok) {
		if (!flashEl)
			return;
		flashEl.textContent = text;
		flashEl.className = ok ? 'ok' : 'bad';
	}

	function refresh() {
		if (!main || main.getAttribute('data-refresh') !== '1' || document.hidden || busy)
			return;
		busy = true;
		fetch(location.href, {
			headers: { 'X-Repctl-Partial': '1' },
			credentials: 'same-origin',
			cache: 'no-store'
		}).then(function (r) {
			if (!r.ok)
				throw new Error('HTTP ' + r.status);
			return r.text();
		}).then(function (t) {
			main.innerHTML = t;
			document.body.classList.remove('stale');
		}).catch(function () {
			document.body.classList.add('stale');
		}).then(function () {
			busy = false;
		});
	}
	setInterval(refresh, 2000);

	document.addEventListener('submit', function (ev) {
		var f = ev.target;

		if ((f.getAttribute('method') || '').toLowerCase() !== 'post' || f.hasAttribute('data-plain'))
			return;
		ev.preventDefault();
		fetch(f.getAttribute('action'), {
			method: 'POST',
			body: new URLSearchParams(new FormData(f)),
			headers: { 'Accept': 'application/json' },
			credentials: 'same-origin'
		}).then(function (r) {
			return r.json().then(function (j) {
				return { ok: r.ok, j: j };
			});
		}).then(function (x) {
			flash(x.ok ? (x.j.message || 'done') : ('error: ' + x.j.error), x.ok);
			if (x.ok && f.getAttribute('data-redirect'))
				location.href = f.getAttribute('data-redirect');
			else
				refresh();
		}).catch(function (e) {
			flash('error: ' + e, false);
		});
	});
})();
