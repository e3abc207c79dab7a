// Package boottest holds the QEMU boot test of the appliance image: it
// boots the built image in a private network namespace and drives it with
// the outpost client commands. It has no non-test code.
package boottest
