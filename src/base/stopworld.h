/* Stopping every other thread of the process for a moment, as conservative garbage collectors
 * do (Boehm's GC: a signal each thread answers by waiting in its handler), for where userfaultfd
 * write protection is not permitted.
 *
 * Each other thread gets SIGPWR (only when the program leaves that signal at its default, and
 * only while our handler is still the one installed), answers, and waits in the handler until
 * mmvi_stw_resume. A thread that answers is in user space, in the handler: no write of its own
 * and none the kernel makes for it (read(2) into memory) is in flight. Threads started meanwhile
 * are found by listing /proc/self/task again until it is stable. A thread that does not answer
 * in 250 ms (the signal blocked) makes the stop fail, with every thread released: nothing was
 * changed. The cost for the program: a pause, and a system call of a stopped thread that a
 * signal interrupts and SA_RESTART does not restart (poll, epoll_wait, nanosleep...) returns
 * EINTR. Allocates nothing; async-signal-safe where it must be. */
#ifndef MMVEC_STOPWORLD_H
#define MMVEC_STOPWORLD_H

#include "os.h"

#include <sys/types.h>

/* May threads be stopped here (the signal free for us, no earlier failure)? */
MMVI_HIDDEN int mmvi_stw_usable(void);

/* Stops every other thread. 0, or a negative errno with nothing stopped (-EBUSY: the signal is
 * the program's; -ETIMEDOUT: a thread did not answer; -E2BIG: too many threads). Callers
 * serialize (the heap lock). */
MMVI_HIDDEN int mmvi_stw_stop(void);

/* A thread the stop leaves alone (0: none): mmvec's own advisor, which blocks every signal and
 * never writes a block (it works under the heap lock that the stop's caller holds). */
MMVI_HIDDEN void mmvi_stw_ignore(pid_t tid);

/* Lets them go on. */
MMVI_HIDDEN void mmvi_stw_resume(void);

#endif
