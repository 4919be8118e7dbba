/*
 * One copy of a model per NUMA node, shared by that node's workers (stagegate/harness.h).
 *
 * Ownership and invariants:
 * - The share does not own the loaded model; it owns the copies it made, one per node that
 *   asked for one, each with a count of the workers holding it.
 * - `lock` guards the slots. It is taken only in set-up and teardown, never while
 *   predicting; a worker that waits on it while another clones waits for the copy it is
 *   about to share. Copies are made by sg_model_clone on the asking worker's thread, so
 *   their pages are first touched on its node.
 * - The loaded model is handed out as is on a one-node machine unless `fresh`: it was made
 *   on that node.
 */
#include <pthread.h>
#include <stdlib.h>

#include "stagegate/harness.h"
#include "stagegate/model.h"

typedef struct {
    int node;
    int holders;
    sg_model *copy;
} share_slot;

struct sg_model_share {
    const sg_model *model;
    bool fresh;
    pthread_mutex_t lock;
    share_slot *slots;
    int n_slots, cap_slots;
    int copies_made;
};

sg_status sg_model_share_new(const sg_model *m, bool fresh, sg_model_share **out, sg_err *err)
{
    *out = NULL;
    sg_model_share *s = calloc(1, sizeof *s);
    if (!s) return sg_errf(err, SG_ENOMEM, "%s: out of memory sharing the model", m->path);
    s->model = m;
    s->fresh = fresh;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return SG_OK;
}

static share_slot *slot_of(sg_model_share *s, int node)
{
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].node == node) return &s->slots[i];
    return NULL;
}

sg_status sg_model_share_get(sg_model_share *s, sg_worker *w, const sg_model **out, sg_err *err)
{
    *out = NULL;
    if (!s->fresh && sg_worker_machine_nodes(w) <= 1) {
        *out = s->model;
        return SG_OK;
    }
    int node = sg_worker_node(w);
    sg_status st = SG_OK;
    pthread_mutex_lock(&s->lock);
    share_slot *slot = slot_of(s, node);
    if (!slot && s->n_slots == s->cap_slots) {
        int cap = s->cap_slots ? s->cap_slots * 2 : 4;
        share_slot *grown = realloc(s->slots, (size_t)cap * sizeof *grown);
        if (!grown) {
            st = sg_errf(err, SG_ENOMEM, "%s: out of memory sharing the model", s->model->path);
        } else {
            s->slots = grown;
            s->cap_slots = cap;
        }
    }
    if (st == SG_OK && !slot) {
        slot = &s->slots[s->n_slots++];
        *slot = (share_slot){.node = node};
    }
    if (st == SG_OK && !slot->copy) {
        st = sg_model_clone(s->model, &slot->copy, err);
        if (st == SG_OK) s->copies_made++;
    }
    if (st == SG_OK) {
        slot->holders++;
        *out = slot->copy;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

void sg_model_share_release(sg_model_share *s, sg_worker *w)
{
    if (!s->fresh && sg_worker_machine_nodes(w) <= 1) return;
    pthread_mutex_lock(&s->lock);
    share_slot *slot = slot_of(s, sg_worker_node(w));
    SG_ASSERT(slot && slot->holders > 0);
    if (--slot->holders == 0) {
        sg_model_free(slot->copy);
        slot->copy = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

int sg_model_share_copies_made(const sg_model_share *s)
{
    return s->copies_made;
}

void sg_model_share_free(sg_model_share *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_slots; i++)
        sg_model_free(s->slots[i].copy);
    free(s->slots);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
