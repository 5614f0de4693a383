/* error.c - names of the library's return codes. */
#include "pinfer.h"

#include <errno.h>

const char *pf_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory";
    case -ENOENT: return "no such file or directory";
    case -EACCES: return "permission denied";
    case -ERANGE: return "value out of range";
    case -ENOTSUP: return "operation not supported";
    case -EPERM: return "operation not permitted";
    case -EBUSY: return "resource busy";
    case -ETIMEDOUT: return "timed out";
    case -ECANCELED: return "canceled";
    case -ESRCH: return "no such process";
    case -EIO: return "input/output error";
    case -EDEADLK: return "would deadlock";
    default: return "unknown error";
    }
}
