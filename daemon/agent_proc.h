/*
 * A helper program the daemon runs and talks to in JSON lines (the
 * migration agents): spawned in a session of its own with nothing of the
 * daemon's open but a pipe for its stdin and one for its stdout (its
 * stderr goes to the daemon's log file, or /dev/null), followed on the
 * loop. Each line it writes is handed to the owner's callback, and its
 * exit once its output is drained. Never blocks the loop: a line to it
 * that does not fit the pipe is dropped and logged.
 */
#ifndef VMCD_AGENT_PROC_H
#define VMCD_AGENT_PROC_H

#include <stdbool.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <qb/qbloop.h>

struct agent_proc;

struct agent_proc_ops {
	/* One line it wrote: an object, or NULL when the line was not JSON (text holds it). */
	void (*line)(void *ctx, struct agent_proc *p, json_object *o, const char *text);
	/* It exited (status as waitpid gives it); p is freed when this returns. */
	void (*exited)(void *ctx, struct agent_proc *p, int status);
};

/* Starts argv[0] with argv. NULL with one line in err. */
struct agent_proc *agent_proc_start(qb_loop_t *loop, char *const argv[], const struct agent_proc_ops *ops,
				    void *ctx, char *err, size_t errlen);
/* A line to its stdin (newline added). 0, or -errno (EAGAIN: the pipe is full, dropped). */
int agent_proc_send(struct agent_proc *p, const char *line);
/* SIGTERM its session (SIGKILL with hard); its exit still comes. */
void agent_proc_kill(struct agent_proc *p, bool hard);
/*
 * Forgets it without waiting, no more callbacks: SIGKILL (hard) or SIGTERM
 * (it ends on its own: a sending agent cancels its migration first),
 * reaped from a timer.
 */
void agent_proc_abandon(struct agent_proc *p, bool hard);
pid_t agent_proc_pid(const struct agent_proc *p);
/* The owner's tag (a migration id, say); set freely. */
void agent_proc_set_tag(struct agent_proc *p, const char *tag);
const char *agent_proc_tag(const struct agent_proc *p);

#endif
