/*
 * mvsmtp_jbase.c - reads libmvsmtp's last error text for jBASE BASIC.
 *
 * DEFCE functions take and return only INT, FLOAT and STRING arguments and cannot
 * return a string, so BASIC reads the error line one byte at a time through these two
 * int functions. Both read smtp_last_error_text(), which belongs to the calling thread
 * and stays valid until that thread's next send, so a loop over the bytes reads one
 * unchanged text.
 *
 * Build (see INSTALL.md):
 *   cc -shared -fPIC -I/usr/local/include -o libmvsmtp_jbase.so mvsmtp_jbase.c \
 *      -L/usr/local/lib -lmvsmtp -Wl,-rpath,/usr/local/lib
 */

#include <string.h>

#include "mvsmtp.h"

/* Returns the length in bytes of the calling thread's last error line ("" after a success). */
int mvsmtp_jbase_error_length(void)
{
    const char *text = smtp_last_error_text();
    return text == NULL ? 0 : (int) strlen(text);
}

/*
 * Returns the byte at the 0-based INDEX of the last error line as 0 to 255, or -1 when
 * INDEX is outside the line. The line is UTF-8, so it never contains the bytes 0xF8 to
 * 0xFF that jBASE uses as marks.
 */
int mvsmtp_jbase_error_byte(int index)
{
    const char *text = smtp_last_error_text();
    if (text == NULL || index < 0 || (size_t) index >= strlen(text)) {
        return -1;
    }
    return (unsigned char) text[index];
}
