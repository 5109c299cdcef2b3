#include "config.h"

#include <string.h>

#include "vmc_errors.h"

const char *vmc_strerror(int rc)
{
	switch (-rc) {
	case VMC_E_NO_QUORUM:
		return "no quorum";
	case VMC_E_RETRY:
		return "cluster membership changed, retry";
	case VMC_E_NOT_READY:
		return "daemon not joined to the cluster yet";
	case VMC_E_UNKNOWN:
		return "outcome unknown";
	case VMC_E_INVALID:
		return "invalid input";
	case VMC_E_EXISTS:
		return "already exists";
	case VMC_E_NOT_FOUND:
		return "not found";
	case VMC_E_BUSY:
		return "busy";
	case VMC_E_DENIED:
		return "permission denied";
	case VMC_E_PROTOCOL:
		return "malformed message";
	case VMC_E_VERSION:
		return "unsupported protocol version";
	default:
		return strerror(-rc);
	}
}
