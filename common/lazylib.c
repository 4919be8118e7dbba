/*
 * Libraries opened when first needed (sg_lazylib in stagegate/common.h).
 *
 * The library is opened RTLD_NOW | RTLD_LOCAL, so a missing symbol of its own is found here
 * and its symbols stay out of the global scope, and it is never closed: its functions may be
 * running in other threads, and its state (libcurl's global init) lives until exit.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "stagegate/common.h"

sg_status sg_lazylib_load(sg_lazylib *lib, sg_err *err)
{
    if (__atomic_load_n(&lib->loaded, __ATOMIC_ACQUIRE)) return SG_OK;
    pthread_mutex_lock(&lib->lock);
    sg_status rc = SG_OK;
    if (!lib->loaded) {
        void **addr = calloc(lib->count ? lib->count : 1, sizeof *addr);
        if (!addr) {
            pthread_mutex_unlock(&lib->lock);
            return sg_errf(err, SG_ENOMEM, "out of memory loading %s", lib->soname);
        }
        (void)dlerror();
        void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char *why = dlerror();
            rc = sg_errf(err, SG_EIO,
                         "%s needs %s, which cannot be loaded (install Debian's %s): %s", lib->what,
                         lib->soname, lib->package, why ? why : "unknown reason");
        }
        for (size_t i = 0; h && i < lib->count; i++) {
            (void)dlerror();
            addr[i] = dlsym(h, lib->names[i]);
            if (!addr[i]) {
                rc = sg_errf(err, SG_EIO,
                             "%s needs the function %s of %s, which the "
                             "installed library lacks (install Debian's %s)",
                             lib->what, lib->names[i], lib->soname, lib->package);
                h = NULL; /* left open: closing a library a failed lookup touched is not worth it */
            }
        }
        if (h) {
            lib->bind(addr);
            __atomic_store_n(&lib->loaded, 1, __ATOMIC_RELEASE);
        }
        free(addr);
    }
    pthread_mutex_unlock(&lib->lock);
    return rc;
}
