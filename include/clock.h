/*
 * clock.h - time (src/base/clock.c).
 */
#ifndef REPCTL_CLOCK_H
#define REPCTL_CLOCK_H

/* Seconds on the monotonic clock (for intervals, timeouts and rates; not a date). */
double clock_mono(void);
/* Seconds since the epoch, as a fraction (the wall clock: dates, clock offsets). */
double clock_wall(void);

#endif
