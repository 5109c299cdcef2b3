/*
 * Domain errors. Functions return 0 or a negative number: -errno for
 * system errors, -VMC_E_* for the cluster's own reasons. The numbers are
 * part of the IPC protocol (clients map them to exit codes): never reuse
 * one, append new ones at the end of their group.
 */
#ifndef VMC_ERRORS_H
#define VMC_ERRORS_H

enum vmc_error {
	/* cluster membership and quorum: 1000.. */
	VMC_E_NO_QUORUM = 1000,     /* this partition may not change anything */
	VMC_E_RETRY = 1001,         /* membership changed before the change was applied */
	VMC_E_NOT_READY = 1002,     /* daemon not (yet) joined to corosync */
	VMC_E_UNKNOWN = 1003,       /* a change's outcome cannot be told (it may or may not be applied) */
	/* requests: 1100.. */
	VMC_E_INVALID = 1100,       /* bad input: a field, an argument */
	VMC_E_EXISTS = 1101,        /* the name is taken */
	VMC_E_NOT_FOUND = 1102,     /* no such VM, node, key */
	VMC_E_BUSY = 1103,          /* not in a state that allows it */
	VMC_E_DENIED = 1104,        /* not root and not in haclient */
	/* wire: 1200.. */
	VMC_E_PROTOCOL = 1200,      /* a malformed message */
	VMC_E_VERSION = 1201,       /* a protocol version we do not speak */
};

/* A short description of rc (negative errno or -VMC_E_*). */
const char *vmc_strerror(int rc);

#endif
