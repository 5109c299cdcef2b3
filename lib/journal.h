/*
 * The journal of applied changes: one JSON line per change (or epoch raise),
 * appended after each batch of deliveries, so that making a change durable
 * costs the size of the change, not of the whole state. A snapshot
 * (state.json) is written after a sync replaced the state and whenever the
 * journal has grown long; replay applies the journal on top of it.
 *
 * Each line carries the config_version the change produced, so replay
 * skips what the snapshot already holds (a crash between writing a
 * snapshot and truncating the journal loses nothing and doubles nothing),
 * and a change that would not reproduce that version marks the journal
 * as not matching the snapshot.
 */
#ifndef VMC_JOURNAL_H
#define VMC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "state.h"

/* Newly allocated line, newline-terminated. */
char *vmc_journal_line_change(const struct vmc_msg *m, uint64_t version_after);
/* The same, with the view it was applied in (placement depends on it). */
char *vmc_journal_line_change_in_view(const struct vmc_msg *m, uint64_t version_after,
				      const uint32_t *members, size_t n_members);
char *vmc_journal_line_epoch(uint64_t epoch, uint64_t version);
/* This node promised epoch counter (replica.h): it never promises less again. */
char *vmc_journal_line_promise(uint64_t counter, uint64_t version);

/*
 * Applies every complete line of text to s. A last line without its
 * newline is a write torn by a crash and is ignored. Returns 0 (with the
 * count of lines applied), or -VMC_E_PROTOCOL with the line number and
 * reason in err.
 */
int vmc_journal_replay(struct vmc_state *s, const char *text, size_t *applied, char *err,
		       size_t errlen);

#endif
