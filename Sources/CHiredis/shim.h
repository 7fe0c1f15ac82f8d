#ifndef SPIKEGATE_CHIREDIS_SHIM_H
#define SPIKEGATE_CHIREDIS_SHIM_H
// hiredis 0.14 (Debian 12) and 1.x both install under <hiredis/…>.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
