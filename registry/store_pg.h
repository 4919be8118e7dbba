/* Shared by the PostgreSQL backend's two files (store_pg.c, store_pg_schema.c). */
#ifndef STAGEGATE_REGISTRY_STORE_PG_H
#define STAGEGATE_REGISTRY_STORE_PG_H

#include "registry_internal.h"

/* The stagegate_registry row's `application`: marks a database as a stagegate registry. */
#define PG_APPLICATION "stagegate-registry"

/* Migration i takes the schema from version i to i + 1. */
extern const char *const reg_pg_migrations[SG_REGISTRY_SCHEMA_VERSION];

#endif
