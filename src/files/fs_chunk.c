/*
 * fs_chunk.c - content-defined chunking: FastCDC (Xia et al., "FastCDC: a
 * Fast and Efficient Content-Defined Chunking Approach for Data
 * Deduplication", USENIX ATC 2016) with fixed parameters.
 *
 * The scanner cuts every file into chunks with cdc_cut() and names each
 * chunk by its SHA-256 (fs_hash.c); the index stores the block list, and
 * the transfer sends only chunks the receiver lacks.  Because a boundary
 * depends only on the bytes just before it (and on the distance from the
 * previous boundary), an insertion or overwrite in the middle of a file
 * changes only the chunks around it: after a chunk or two the cuts fall on
 * the same bytes as before and every later chunk is reused.
 *
 * The algorithm, as in the paper:
 *   - a gear rolling hash, fp = (fp << 1) + gear[byte]: bit k of fp depends
 *     on the last k + 1 bytes only, so the high bits see a 64-byte window;
 *   - cut-point skipping: no boundary before CDC_MIN, and the hash starts
 *     there (the skipped bytes cannot influence it);
 *   - normalized chunking, level 1: from CDC_MIN up to CDC_AVG a cut needs
 *     (fp & MASK_S) == 0 with 17 mask bits (probability 2^-17, stricter than
 *     the 2^-16 an average of 64 KiB would need), and after CDC_AVG it needs
 *     (fp & MASK_L) == 0 with 15 bits (2^-15, looser), which pulls chunk
 *     sizes towards CDC_AVG; at CDC_MAX the chunk is cut regardless;
 *   - the mask bits are spread over the upper bits 18..63 rather than
 *     packed at the bottom ("zero padding" in the paper), so the test
 *     involves a window of up to 64 bytes and not just the last 17.
 * One deviation in wording: the byte at which the condition holds ends the
 * chunk (the chunk length is i + 1), so chunks are in (CDC_MIN, CDC_MAX].
 *
 * Two choices were measured (two sets of 16 MiB of random data, 1600
 * random insertion points for each of 100 bytes and 1 MiB, counting the
 * bytes of new chunks beyond the inserted ones):
 *   - level 1, not the paper's preferred level 2.  With level 2 (18/14
 *     nested bits) most cuts fall after CDC_AVG, where whether a position is a cut
 *     depends on how far it is from the chunk's start; after a large
 *     insertion the new chunk starts are out of phase with the old ones and
 *     take longer to fall back in step: the extra bytes after a 1 MiB
 *     insertion averaged 165 KiB with 2% of cases over 2 * CDC_MAX (up to
 *     900 KiB), against 128 KiB and none over 410 KiB at level 1.  Level 2
 *     was better only for tiny edits (80 against 98 KiB on average).
 *   - MASK_L is MASK_S without two of its bits, so every position that
 *     satisfies the stricter mask also satisfies the looser one: two chunk
 *     sequences out of step then agree on more cut points and fall back
 *     into step sooner.
 * The mean chunk size on random data is about 80 KiB (1.2 x CDC_AVG).
 *
 * The gear table and masks are part of the on-disk and on-wire format (two
 * nodes must cut the same file the same way, and a node must cut it the
 * same way tomorrow), so they are literal constants here, never computed at
 * run time.  The table is splitmix64 (Steele, Lea and Flood, "Fast
 * splittable pseudorandom number generators", OOPSLA 2014) from the seed
 * 0x72657063746c6364 ("repctlcd" in ASCII), all arithmetic mod 2^64:
 *
 *	state += 0x9e3779b97f4a7c15;
 *	z = state;
 *	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *	z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *	cdc_gear[i] = z ^ (z >> 31);	for i = 0 .. 255 in order
 *
 * tests/unit/test_fs_chunk.c regenerates the table that way and compares.
 * MASK_S has bits 63 - floor(i * 48 / 17) for i = 0..16 (63, 61, 58, 55,
 * 52, 49, 47, 44, 41, 38, 35, 32, 30, 27, 24, 21, 18); MASK_L has the same
 * bits except 41 and 18.
 *
 * A long run of one byte value drives fp to a constant that meets neither
 * mask, so such data is cut at CDC_MAX (tested).
 */
#include "fs_chunk.h"

#define MASK_S 0xa492924949240000ULL /* 17 bits: before CDC_AVG */
#define MASK_L 0xa492904949200000ULL /* 15 of them: from CDC_AVG on */

const uint64_t cdc_gear[256] = {
	0x47163a072e18d7d0ULL,
	0x1faebb59996d59daULL,
	0xca45a24d71542449ULL,
	0x3a698061e49b0a77ULL,
	0x6b39f31298b7a78dULL,
	0xde4eef19b6a46a0aULL,
	0x3186dbf0b0bd7b30ULL,
	0x4225f896b46052f3ULL,
	0x4a53407f4bb1077dULL,
	0x9e93f7c67dd8eb3fULL,
	0x5c6cb8f7d19b7e4fULL,
	0x4bbd09b2185da506ULL,
	0x60e35a9d79691c7bULL,
	0xa502ed6d758b0a47ULL,
	0x94b765c6b2b1fb29ULL,
	0x8f0ce591224861d9ULL,
	0x5c12300b206982c5ULL,
	0xeae42c193f6b0233ULL,
	0x23b5d2d10000d8a6ULL,
	0x1c9a6c8232e83f28ULL,
	0x0fbb97bc80fe8395ULL,
	0x3327457b76d2c9c3ULL,
	0xab42b61823d97d89ULL,
	0x776d8c453271adbfULL,
	0xacb5930ef56ea0ceULL,
	0xbc81c1ece533dcf7ULL,
	0x56c85e5b917045aeULL,
	0x7748e77a05c53a95ULL,
	0x8c84de6b057315ffULL,
	0x1a5c0e0a6808efe2ULL,
	0x4179c94402b1761bULL,
	0x81e649f1e5606e70ULL,
	0xcc010a658c05e655ULL,
	0xa94600745b80c974ULL,
	0xfff96e9dc187c9adULL,
	0x1b4b2feb73eb2017ULL,
	0x9665255d60e79424ULL,
	0x037ac3a3ffeeef42ULL,
	0x0c4cf2aeb4f1cad2ULL,
	0xb5218b545e1eacadULL,
	0xdc1ec7404b26b0bfULL,
	0x9c56f1f9d66d0732ULL,
	0x64b05330b8b852e2ULL,
	0xe139eea1fb81199cULL,
	0x4a3727f6824ffbb1ULL,
	0x5f042f1b6e5fd727ULL,
	0xae258a849653afc8ULL,
	0xa40a5a603c5bdb76ULL,
	0xb6cdbc30b2859358ULL,
	0x84a16aed7a0e371dULL,
	0xde8c9a9e771b9693ULL,
	0xc2c929ebcf04c66eULL,
	0xdc4430d11004dd82ULL,
	0x56e0ee948ad2b6aeULL,
	0x99703c5abcbd127dULL,
	0x8cb993c708457f76ULL,
	0xed79f9c75b3bef9bULL,
	0x56ac75278ad63b87ULL,
	0x51ab895b1b832780ULL,
	0xc32fa1bfdbcc5829ULL,
	0x390c5f31b55fea8bULL,
	0xc7dfafc72714fd44ULL,
	0x43ee2a5f9d1ff217ULL,
	0x64fe3a44f89a59eaULL,
	0x39c1a4662439e091ULL,
	0xdff6ef166fe0556bULL,
	0xa6f198bb30309cfdULL,
	0x58e07eaa6e254d18ULL,
	0x3b2852d623e1f279ULL,
	0x92916fa046e7d41dULL,
	0xec2be3c3fe1a544cULL,
	0x676f03607972d743ULL,
	0x724bcec6e5ac3790ULL,
	0xce81bfd6e3d10311ULL,
	0x9b83b138cd2e5d66ULL,
	0x898a9d735150e8eeULL,
	0x62b48f9fae66d2beULL,
	0x6794520bd949964cULL,
	0xe68c41dc881717caULL,
	0x44758e4efade43b1ULL,
	0x8b2b7d30ec116110ULL,
	0xe0c2b896b7aa45aaULL,
	0x3c57d26a6cb7d454ULL,
	0x5d33408ee1bdc51eULL,
	0x996b7b56366bf501ULL,
	0xc705c9d99f8e1ddfULL,
	0xf6e9db69c9575157ULL,
	0xe9f2c1a1b648417dULL,
	0x72af10f99ad48b65ULL,
	0x9e2cee8d91fbccbeULL,
	0x58b7fd794c393bb7ULL,
	0x18421f64abd98d92ULL,
	0xaad48a8997ea8903ULL,
	0x8d43a5936e09305dULL,
	0x1dd2ea3e0701bd85ULL,
	0x787947c9a685f803ULL,
	0xce13b3f7254b98f9ULL,
	0xf5b27e133f18130aULL,
	0xddcf70a07634a87aULL,
	0xe3fe074c130ea35cULL,
	0x35c09d51204bdacbULL,
	0x191bcffb24a5bc30ULL,
	0x32fba176635d654cULL,
	0x3b1c73f89da15ed0ULL,
	0x3cb692340bb341e8ULL,
	0x2548875964213aa1ULL,
	0x2ed51d402223cbb0ULL,
	0xaf8249ed148505f7ULL,
	0x296a3e2e65b78ab9ULL,
	0x8140211e6d79173eULL,
	0x63cbe56cb5f24204ULL,
	0xdc59ed1bdb78f0f0ULL,
	0xb17b1359d7639269ULL,
	0x5b233bb53bf30014ULL,
	0xcb7f61aebebf6cd5ULL,
	0xf8513b169bdf9921ULL,
	0xe914817a0699c3c3ULL,
	0xd798f7488894b7a6ULL,
	0xf1f3bb2c4e67a9a7ULL,
	0x40a4f7770498cf02ULL,
	0xe35b7d25c763f62aULL,
	0xb02257e1e4a0147eULL,
	0x023dbc411d62d7cbULL,
	0x050d504b564c95a5ULL,
	0x2490b7bb68ab0e2eULL,
	0xac48aad9f36bef80ULL,
	0x5133a70558c4b88cULL,
	0x00d191b2f4388c5bULL,
	0xc7bbe36ae4230196ULL,
	0xedfc0fb5bbf9b9f3ULL,
	0x5393b7138fa066bdULL,
	0xaa80ea9a8687064dULL,
	0xf1308da3986ba947ULL,
	0x73b9eedd9843a1deULL,
	0xe0471247ec8edd7aULL,
	0xb7a70cb8f7a704c0ULL,
	0xd04cfdf7d2d51d90ULL,
	0x865379f1a6797f81ULL,
	0x5265488bcd83a07bULL,
	0xf96f9cc3341f3733ULL,
	0x442058535c101370ULL,
	0x1286c52aaeb66075ULL,
	0x98468f8b1b8bed3aULL,
	0x4a971890f333ad63ULL,
	0xda187f9cdd5e63a3ULL,
	0x083bd0163699d4ecULL,
	0xfe08a603247cf5d8ULL,
	0xc0a4008aab242b58ULL,
	0xb49464c926d8e7eaULL,
	0xe3801d4ebd2107e0ULL,
	0x01dfbfd38a8c17e0ULL,
	0x170fe3a6ca1cd23cULL,
	0x1b2a81fc795a5157ULL,
	0x01f99622afb2db72ULL,
	0x923ef2f397b55176ULL,
	0xe2cd0288f83ad91bULL,
	0x044a3bc0c1a36bc0ULL,
	0xb9d039227d9501beULL,
	0x0f048776b5aba9cfULL,
	0x8bd74e9ef83feff4ULL,
	0x2bf6896554cdf797ULL,
	0xbb8330a3540b49ebULL,
	0xfe83980ebd79b879ULL,
	0x9fa289fd743c5684ULL,
	0x53577e9e38dfc80fULL,
	0x32a79081807044f6ULL,
	0x2701d8a85e7dbea6ULL,
	0xc0665e63962dbdc1ULL,
	0x60c5175b6b0f714bULL,
	0x7de15c77c37e4d88ULL,
	0x52ae477e1c6b9efcULL,
	0x64a560c2a5125597ULL,
	0x826c1ace8b7778c3ULL,
	0x22a8c70e9c70ef57ULL,
	0xeaa28b9c6f85f3fcULL,
	0xb1afd2536cbafd46ULL,
	0x4abc3c21ff725a38ULL,
	0xf45aa6504027f275ULL,
	0x69676621ad8e4bedULL,
	0x1a776ce61bb56108ULL,
	0x2b5371b803a5bd3bULL,
	0x9970965a8efd3592ULL,
	0x35b94e3b375f1729ULL,
	0x4b06291308cb5942ULL,
	0x07775fa5278b06fbULL,
	0xf9ec3f0024b88f3cULL,
	0x6f48512401548536ULL,
	0xdd4e59f35cb49c91ULL,
	0x1edb3080442079f1ULL,
	0x72d9d23bd81519a0ULL,
	0x58168decaad92af3ULL,
	0x448826309e7d2300ULL,
	0xba955c46243cb014ULL,
	0x189d38689ffcb5a8ULL,
	0x974a99c7a7c968cdULL,
	0x771346e10d871279ULL,
	0x9c1b04d1bdd1aa72ULL,
	0xa7f9104f83fd303aULL,
	0x44446d8aabb486cbULL,
	0x0c13599bee1cf4e5ULL,
	0x1059ce69eaf4922aULL,
	0xe6495e0488146ce2ULL,
	0xc9aacc868500aa5fULL,
	0x5c80a01e6d7f76f3ULL,
	0x53d577df6a101c2bULL,
	0x1a69a9119ae54784ULL,
	0xca79b26d572e0d86ULL,
	0xabb23458b6bb1f19ULL,
	0xbd9205f419bc5fe2ULL,
	0xcc2576ea0fc30df9ULL,
	0xa1a8f090077aa678ULL,
	0x3358ac3720dd9047ULL,
	0xfaf897fc9c2ece28ULL,
	0x7bc39cd19cbe065aULL,
	0x6798e881e4ed9375ULL,
	0x06d3bdaab6262c3bULL,
	0xf6a1a7c42c2db3d0ULL,
	0xca85f11dbae958bcULL,
	0xf35f8b90f62d7fc6ULL,
	0x400e17aae9dac1baULL,
	0xb03dbe7146a656daULL,
	0x86daa758e582ad92ULL,
	0x940c6d2c50a381a5ULL,
	0xac124e3b47cdf2b7ULL,
	0x2759d422a0a0f60eULL,
	0x1bebc65a96f8e254ULL,
	0x60e2d0d547a67d0cULL,
	0x501c251ef822e235ULL,
	0x37df48294e041a16ULL,
	0xd761e46326707057ULL,
	0xcb84cb6c98413b34ULL,
	0x5460a38f4d2aca53ULL,
	0x15c79a77c46e1e01ULL,
	0x697825494e35c78cULL,
	0x000286a40484d026ULL,
	0x89235b742ef8b095ULL,
	0x8f8ccd3f9202db45ULL,
	0x0e48f9c12bb4fe72ULL,
	0xbf831d4dd0443b70ULL,
	0x8c4cd5cd238fc86dULL,
	0x02820096aca21a27ULL,
	0x2cf31f255add100aULL,
	0xd2bf80ab651b338bULL,
	0x5eab399668089cbcULL,
	0x12f5a9a6fbc10ea1ULL,
	0x8dc91f97ae586a7dULL,
	0x43a55e4fabbea0a7ULL,
	0xc782900763af8502ULL,
	0x08e101fe63e7f5b5ULL,
	0x2aaaeb4bb7ff1385ULL,
	0x41cb7b84c92852f6ULL,
	0xbd9e784541c2d792ULL,
	0xcf653d1fb6873ed9ULL,
	0xeb1c074b3e90c3c1ULL,
	0x1d0953493114d6cfULL,
	0x976199b4967e1c15ULL,
};

/*
 * Scan buf[CDC_MIN..end) for a cut point, the first position i where
 * (fp & mask) == 0 (MASK_S while i < CDC_AVG, MASK_L after).  Returns the
 * chunk length i + 1, or 0 when there is none before end.
 */
static size_t
cdc_scan(const uint8_t *buf, size_t end)
{
	uint64_t fp = 0;
	size_t i = CDC_MIN;
	size_t norm = end < CDC_AVG ? end : CDC_AVG;

	for (; i < norm; i++) {
		fp = (fp << 1) + cdc_gear[buf[i]];
		if ((fp & MASK_S) == 0)
			return i + 1;
	}
	for (; i < end; i++) {
		fp = (fp << 1) + cdc_gear[buf[i]];
		if ((fp & MASK_L) == 0)
			return i + 1;
	}
	return 0;
}

/*
 * Only bytes before the returned length are ever looked at, so a boundary
 * found with eof == 0 in a partial buffer is the one a whole-file buffer
 * would give: streaming and one-shot chunking agree.
 */
size_t
cdc_cut(const uint8_t *buf, size_t len, int eof)
{
	size_t end, n;

	if (len <= CDC_MIN)
		return eof ? len : 0;
	end = len < CDC_MAX ? len : CDC_MAX;
	n = cdc_scan(buf, end);
	if (n > 0)
		return n;
	if (end == CDC_MAX || eof)
		return end;
	return 0;
}
