package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// This file holds the TLS record decryption: key derivation from the
// secrets of an NSS key log (TLS 1.3: HKDF-Expand-Label from the traffic
// secrets; TLS 1.2: the key block from the master secret through the PRF)
// and the AEAD record protection (AES-GCM, ChaCha20-Poly1305).

// tlsSuite describes a cipher suite Conn can decrypt.
type tlsSuite struct {
	id     uint16
	name   string
	tls13  bool
	hash   func() hash.Hash
	keyLen int
	chacha bool // ChaCha20-Poly1305, else AES-GCM
}

var tlsSuites = []tlsSuite{
	// TLS 1.3
	{0x1301, "TLS_AES_128_GCM_SHA256", true, sha256.New, 16, false},
	{0x1302, "TLS_AES_256_GCM_SHA384", true, sha512.New384, 32, false},
	{0x1303, "TLS_CHACHA20_POLY1305_SHA256", true, sha256.New, 32, true},
	// TLS 1.2 AEAD suites. With the master secret from the key log the key
	// exchange does not matter, so RSA and DHE variants decrypt as well.
	{0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", false, sha256.New, 16, false},
	{0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", false, sha512.New384, 32, false},
	{0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", false, sha256.New, 16, false},
	{0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", false, sha512.New384, 32, false},
	{0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", false, sha256.New, 32, true},
	{0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", false, sha256.New, 32, true},
	{0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", false, sha256.New, 32, true},
	{0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", false, sha256.New, 16, false},
	{0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", false, sha512.New384, 32, false},
	{0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", false, sha256.New, 16, false},
	{0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", false, sha512.New384, 32, false},
}

// suiteByID returns the suite with that id, or nil when Conn cannot
// decrypt it (CBC, CCM, NULL and export suites).
func suiteByID(id uint16) *tlsSuite {
	for i := range tlsSuites {
		if tlsSuites[i].id == id {
			return &tlsSuites[i]
		}
	}
	return nil
}

// hashSize returns the output size of the suite's hash.
func (s *tlsSuite) hashSize() int { return s.hash().Size() }

// hkdfExpandLabel is HKDF-Expand-Label of RFC 8446 §7.1:
// HKDF-Expand(secret, HkdfLabel{length, "tls13 " + label, context}, length).
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) []byte {
	const prefix = "tls13 "
	info := make([]byte, 0, 4+len(prefix)+len(label)+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(prefix)+len(label)))
	info = append(info, prefix...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		panic("hkdfExpandLabel: " + err.Error()) // only for length > 255*hash size
	}
	return out
}

// prf12 is the TLS 1.2 PRF of RFC 5246 §5: P_hash(secret, label + seed)
// with HMAC over h (SHA-256, or SHA-384 for the *_SHA384 suites).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := make([]byte, 0, len(label)+len(seed))
	ls = append(ls, label...)
	ls = append(ls, seed...)
	mac := hmac.New(h, secret)
	out := make([]byte, 0, n+mac.Size())
	mac.Write(ls)
	a := mac.Sum(nil) // A(1)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}

// newAEAD makes the record cipher of suite s with key.
func newAEAD(s *tlsSuite, key []byte) (cipher.AEAD, error) {
	if s.chacha {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// recordKeys protect one direction of a connection for one key epoch.
type recordKeys struct {
	suite *tlsSuite
	aead  cipher.AEAD
	// iv is the TLS 1.3 or ChaCha20 per-connection IV (12 bytes), or for TLS
	// 1.2 AES-GCM the 4-byte implicit salt in iv[:4].
	iv  [12]byte
	seq uint64
	// secret is the TLS 1.3 traffic secret, for KeyUpdate.
	secret []byte
	// scratch for the nonce and the additional data, so Open does not allocate
	nonce [12]byte
	aad   [13]byte
}

// newKeys13 derives a TLS 1.3 traffic key and IV from a traffic secret
// (RFC 8446 §7.3).
func newKeys13(s *tlsSuite, secret []byte) (*recordKeys, error) {
	if len(secret) != s.hashSize() {
		return nil, fmt.Errorf("the key log's secret is %d bytes but %s needs %d", len(secret), s.name, s.hashSize())
	}
	key := hkdfExpandLabel(s.hash, secret, "key", nil, s.keyLen)
	iv := hkdfExpandLabel(s.hash, secret, "iv", nil, 12)
	a, err := newAEAD(s, key)
	if err != nil {
		return nil, err
	}
	k := &recordKeys{suite: s, aead: a, secret: secret}
	copy(k.iv[:], iv)
	return k, nil
}

// next returns the keys after a KeyUpdate: the secret becomes
// HKDF-Expand-Label(secret, "traffic upd", "", Hash.length) (RFC 8446 §7.2).
func (k *recordKeys) next() (*recordKeys, error) {
	return newKeys13(k.suite, hkdfExpandLabel(k.suite.hash, k.secret, "traffic upd", nil, k.suite.hashSize()))
}

// newKeys12 derives the client and server keys of a TLS 1.2 AEAD suite from
// the master secret: key_block = PRF(master, "key expansion", server_random
// + client_random) split as client key, server key, client IV, server IV (no
// MAC keys for AEAD suites; RFC 5246 §6.3, RFC 5288, RFC 7905).
func newKeys12(s *tlsSuite, master []byte, clientRandom, serverRandom *[32]byte) (client, server *recordKeys, err error) {
	ivLen := 4
	if s.chacha {
		ivLen = 12
	}
	var seed [64]byte
	copy(seed[:32], serverRandom[:])
	copy(seed[32:], clientRandom[:])
	kb := prf12(s.hash, master, "key expansion", seed[:], 2*s.keyLen+2*ivLen)
	ck, sk := kb[:s.keyLen], kb[s.keyLen:2*s.keyLen]
	civ, siv := kb[2*s.keyLen:2*s.keyLen+ivLen], kb[2*s.keyLen+ivLen:]
	mk := func(key, iv []byte) (*recordKeys, error) {
		a, err := newAEAD(s, key)
		if err != nil {
			return nil, err
		}
		k := &recordKeys{suite: s, aead: a}
		copy(k.iv[:], iv)
		return k, nil
	}
	if client, err = mk(ck, civ); err != nil {
		return nil, nil, err
	}
	if server, err = mk(sk, siv); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

var (
	errRecordAuth   = errors.New("record failed to authenticate (wrong keys?)")
	errRecordShort  = errors.New("protected record too short")
	errNoInnerType  = errors.New("decrypted TLS 1.3 record has no content type (all padding)")
	errSeqExhausted = errors.New("record sequence number exhausted")
)

// open decrypts one protected record whose 5-byte header is hdr and whose
// body is payload, into dst[:0] (which must not overlap payload), or, when
// inPlace, over the ciphertext in payload (which a failure then zeroes). It returns the
// plaintext and the content type: the outer type for TLS 1.2, the inner type
// for TLS 1.3 (padding removed). A record that fails to authenticate leaves
// the sequence number as it was.
func (k *recordKeys) open(dst []byte, inPlace bool, hdr, payload []byte) ([]byte, uint8, error) {
	if k.seq == ^uint64(0) {
		return nil, 0, errSeqExhausted
	}
	overhead := k.aead.Overhead()
	var plain []byte
	var err error
	switch {
	case k.suite.tls13:
		if len(payload) < overhead+1 {
			return nil, 0, errRecordShort
		}
		k.xorNonce()
		plain, err = k.aead.Open(outBuf(dst, inPlace, payload), k.nonce[:], payload, hdr[:5])
	case k.suite.chacha: // TLS 1.2 ChaCha20-Poly1305: nonce = iv XOR seq
		if len(payload) < overhead {
			return nil, 0, errRecordShort
		}
		k.xorNonce()
		k.aad12(hdr, len(payload)-overhead)
		plain, err = k.aead.Open(outBuf(dst, inPlace, payload), k.nonce[:], payload, k.aad[:])
	default: // TLS 1.2 AES-GCM: salt(4) || explicit nonce (8, in the record)
		if len(payload) < 8+overhead {
			return nil, 0, errRecordShort
		}
		copy(k.nonce[:4], k.iv[:4])
		copy(k.nonce[4:], payload[:8])
		k.aad12(hdr, len(payload)-8-overhead)
		plain, err = k.aead.Open(outBuf(dst, inPlace, payload[8:]), k.nonce[:], payload[8:], k.aad[:])
	}
	if err != nil {
		return nil, 0, errRecordAuth
	}
	k.seq++
	if !k.suite.tls13 {
		return plain, hdr[0], nil
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, errNoInnerType
	}
	return plain[:i], plain[i], nil
}

// outBuf returns where Open writes: dst[:0], or ciphertext[:0] to decrypt
// over the ciphertext.
func outBuf(dst []byte, inPlace bool, ciphertext []byte) []byte {
	if inPlace {
		return ciphertext[:0]
	}
	return dst[:0]
}

// xorNonce sets nonce = iv XOR (0^32 || seq).
func (k *recordKeys) xorNonce() {
	k.nonce = k.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], k.seq)
	for i := range s {
		k.nonce[4+i] ^= s[i]
	}
}

// aad12 fills the TLS 1.2 additional data: seq || type || version || length.
func (k *recordKeys) aad12(hdr []byte, plainLen int) {
	binary.BigEndian.PutUint64(k.aad[:8], k.seq)
	k.aad[8], k.aad[9], k.aad[10] = hdr[0], hdr[1], hdr[2]
	binary.BigEndian.PutUint16(k.aad[11:], uint16(plainLen))
}
