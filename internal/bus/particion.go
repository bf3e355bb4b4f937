package bus

import (
	"encoding/binary"
	"math/bits"
)

// ParticionDe returns the partition, of n, that a producer with
// HashingScheme routes a message with key clave to: Murmur3 (x86, 32 bits,
// seed 0) of the key's bytes, its sign bit cleared as the Java client does,
// modulo n. A producer in another language agrees when it hashes the same
// way (docs/python-participant.md shows it for Python).
func ParticionDe(clave string, n int) int {
	if n <= 1 {
		return 0
	}
	return int((murmur3(clave) & 0x7fffffff) % uint32(n))
}

// murmur3 is MurmurHash3_x86_32 with seed 0.
func murmur3(s string) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	b := []byte(s)
	var h uint32
	n := len(b) / 4
	for i := range n {
		k := binary.LittleEndian.Uint32(b[4*i:])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	var k uint32
	cola := b[4*n:]
	switch len(cola) {
	case 3:
		k ^= uint32(cola[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(cola[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(cola[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(len(b))
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
