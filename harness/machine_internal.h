/*
 * Internal to harness/: the machine record and warnings with every /sys and
 * /proc path read under `root` ("" = this machine), so tests can check them on
 * a fake tree (files missing as in VMs and containers, a powersave governor,
 * boost on).
 */
#ifndef STAGEGATE_HARNESS_MACHINE_INTERNAL_H
#define STAGEGATE_HARNESS_MACHINE_INTERNAL_H

#include "stagegate/harness.h"

json_t *sg_machine_json_at(const char *root);
int sg_machine_warnings_at(const char *root, const int *cpus, int n, char warnings[][160], int max);

#endif
