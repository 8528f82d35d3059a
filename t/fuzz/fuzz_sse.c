/*
 * libFuzzer target: SSE framing, ngx_geostream_sse_event_write().
 * Whatever the payload, the frame has exactly the size announced, ends
 * with its blank line, has no other blank line and no line that is not a
 * field of its own (id:, data:): no payload can end an event early or
 * inject a field; the data lines joined give the payload back, its line
 * breaks as LF.
 */

#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          frame_size, i, j, len;
    unsigned char  *frame, *end, *line, *next, *joined;

    frame_size = ngx_geostream_sse_event_size((const unsigned char *) "0:1",
                                              3, data, size);
    frame = malloc(frame_size);
    fuzz_assert(frame != NULL);

    end = ngx_geostream_sse_event_write(frame, (const unsigned char *) "0:1",
                                        3, data, size);

    fuzz_assert((size_t) (end - frame) == frame_size && frame_size >= 2
                && frame[frame_size - 1] == '\n'
                && frame[frame_size - 2] == '\n');

    fuzz_assert(frame_size >= 8 && memcmp(frame, "id: 0:1\n", 8) == 0);

    joined = malloc(size + 1);
    fuzz_assert(joined != NULL);
    j = 0;

    /* every line up to the final blank one is "data: ..." without CR */
    for (line = frame + 8; line < frame + frame_size - 1; line = next) {
        next = memchr(line, '\n', frame + frame_size - 1 - line);
        fuzz_assert(next != NULL);
        len = next - line;
        next++;

        fuzz_assert(len >= 6 && memcmp(line, "data: ", 6) == 0
                    && memchr(line, '\r', len) == NULL);

        if (line != frame + 8) {
            joined[j++] = '\n';
        }

        memcpy(joined + j, line + 6, len - 6);
        j += len - 6;
    }

    /* the payload, its CR, LF and CRLF as LF, a final break dropped */
    for (i = 0, len = 0; i < size; i++) {
        if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n') {
            continue;
        }

        fuzz_assert(len < j + 1);
        fuzz_assert(joined[len] == (data[i] == '\r' ? '\n' : data[i])
                    || (i == size - 1 && len == j
                        && (data[i] == '\n' || data[i] == '\r')));
        len++;
    }

    free(joined);
    free(frame);

    return 0;
}
