//go:build linux

#include "textflag.h"

// func calibCall(ssl, buf uintptr, n int) int
// calls calibTarget the way C calls SSL_write: (ssl, buf, n) in DI, SI, DX.
TEXT ·calibCall(SB), NOSPLIT, $0-32
	MOVQ ssl+0(FP), DI
	MOVQ buf+8(FP), SI
	MOVQ n+16(FP), DX
	CALL ·calibTarget(SB)
	MOVQ AX, ret+24(FP)
	RET

// func calibTarget()
// stands for SSL_write: it returns its third argument. The calibration
// probes it.
TEXT ·calibTarget(SB), NOSPLIT|NOFRAME, $0-0
	MOVQ DX, AX
	RET

// func calibTargetAddr() uintptr
TEXT ·calibTargetAddr(SB), NOSPLIT, $0-8
	LEAQ ·calibTarget(SB), AX
	MOVQ AX, ret+0(FP)
	RET
