/**
 * @file
 * Reading the files an operator points corepiped at (the config file, the token file) so that
 * none of them can block the thread that reads it or make it read without bound.
 *
 * Context: any thread. Ownership: the caller frees what cp_file_read() returns.
 */
#ifndef COREPIPE_CP_FILE_H
#define COREPIPE_CP_FILE_H

#include <stddef.h>

/**
 * Read a whole file without ever blocking on it: opened O_NONBLOCK | O_CLOEXEC (a FIFO does
 * not wait for a writer), and only a regular file of at most @p max bytes is read (a FIFO,
 * device, socket or directory is an error naming the path and what it is).
 * @return 0 with *out (malloc'd, NUL-terminated, free it) and *len, or -errno (open/read),
 * -EINVAL (not a regular file), -EFBIG (larger than @p max), -EAGAIN (it grew while read),
 * -ENOMEM, each with @p err "path: what".
 * Context: any thread. Used for the config file and the token file.
 */
int cp_file_read(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen);

#endif
