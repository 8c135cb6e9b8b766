/* version.h - the release of repctl. */
#ifndef REPCTL_VERSION_H
#define REPCTL_VERSION_H
#define REPCTL_VERSION "0.1.0"
#endif
