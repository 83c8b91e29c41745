/* version.h — the promptd version string. */
#ifndef PROMPTD_CORE_VERSION_H
#define PROMPTD_CORE_VERSION_H
#define PROMPTD_VERSION "0.1.0"
#endif
