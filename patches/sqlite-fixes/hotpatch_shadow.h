/* Shadow state for hotpatches (livepatch's klp_shadow_*): a new field attached to an existing
** object by address, provided by the host as the "hotpatch.shadow" import module. */
#ifndef HOTPATCH_SHADOW_H
#define HOTPATCH_SHADOW_H
#define HOTPATCH_SHADOW_IMPORT(name) __attribute__((import_module("hotpatch.shadow"), import_name(name)))
/* The field `id` of `obj`, or 0 when it has none. */
HOTPATCH_SHADOW_IMPORT("get") void *hotpatch_shadow_get(const void *obj, unsigned id);
/* A new zeroed field of `size` bytes, or 0 when `obj` already has one (or memory ran out). */
HOTPATCH_SHADOW_IMPORT("alloc") void *hotpatch_shadow_alloc(const void *obj, unsigned id, unsigned size);
/* The field if it exists, else a new zeroed one. */
HOTPATCH_SHADOW_IMPORT("get_or_alloc") void *hotpatch_shadow_get_or_alloc(const void *obj, unsigned id, unsigned size);
/* Frees the field `id` of `obj`, if any. */
HOTPATCH_SHADOW_IMPORT("free") void hotpatch_shadow_free(const void *obj, unsigned id);
/* Frees the field `id` of every object (a patch's post-revert hook calls this). */
HOTPATCH_SHADOW_IMPORT("free_all") void hotpatch_shadow_free_all(unsigned id);
#endif
