package pccrr

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

type keyDerivationCheck struct {
	Plaintext string `json:"plaintext"`
	IV        string `json:"iv"`
	Kp        string `json:"kp"`
	AES128    string `json:"AES_128_key=Kp[:16]"`
	AES192    string `json:"AES_192_key=Kp[:24]"`
	AES256    string `json:"AES_256_key=Kp[:32]"`
}

// TestSpecErrata10_AESKeyIsKpPrefixWithAES256Fallback pins the key reading
// of protocols.md §3.6 with aes_keyderivation_check.json: EncryptBlock
// reproduces all three ciphertexts (key = Kp prefix, PKCS#7), DecryptBlock
// recovers the plaintext from each, and a block the sender encrypted with
// the full 32-byte Kp is recovered although the header says AES_128/192.
func TestSpecErrata10_AESKeyIsKpPrefixWithAES256Fallback(t *testing.T) {
	var v keyDerivationCheck
	vectors.JSON(t, &v, "peerdist-vectors", "derived", "aes_keyderivation_check.json")
	plain, iv, kp := vectors.Hex(t, v.Plaintext), vectors.Hex(t, v.IV), vectors.Hex(t, v.Kp)
	isPlain := func(b []byte) bool { return bytes.Equal(b, plain) }
	cts := map[CryptoAlgo][]byte{
		CryptoAES128: vectors.Hex(t, v.AES128),
		CryptoAES192: vectors.Hex(t, v.AES192),
		CryptoAES256: vectors.Hex(t, v.AES256),
	}
	for algo, want := range cts {
		got, err := EncryptBlock(kp, algo, iv, plain)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("EncryptBlock %v = %x, %v; want %x", algo, got, err, want)
		}
		dec, err := DecryptBlock(kp, algo, iv, want, len(plain), isPlain)
		if err != nil || !isPlain(dec) {
			t.Errorf("DecryptBlock %v = %x, %v", algo, dec, err)
		}
	}
	// Header says AES_128 or AES_192, sender used all of Kp (the MS test
	// suite's .NET reading): the first try fails, the AES-256 retry works.
	for _, header := range []CryptoAlgo{CryptoAES128, CryptoAES192} {
		calls := 0
		verify := func(b []byte) bool { calls++; return isPlain(b) }
		dec, err := DecryptBlock(kp, header, iv, cts[CryptoAES256], len(plain), verify)
		if err != nil || !isPlain(dec) || calls != 2 {
			t.Errorf("fallback with header %v: %x, %v after %d tries", header, dec, err, calls)
		}
		if dec, _ := DecryptBlock(kp, header, iv, cts[CryptoAES256], len(plain), nil); isPlain(dec) {
			t.Errorf("header %v without verify decrypted the AES-256 block: fallback untested", header)
		}
	}
	// No key fits: ErrVerify, never a wrong plaintext.
	wrong := bytes.Repeat([]byte{0x55}, 32)
	if _, err := DecryptBlock(wrong, CryptoAES128, iv, cts[CryptoAES128], len(plain), isPlain); !errors.Is(err, ErrVerify) {
		t.Errorf("wrong Kp: err %v, want ErrVerify", err)
	}
}

// TestMSTestBlkDecryptsWithFallback decrypts the two MS test suite MSG_BLK
// vectors, both labelled AES_128 in the header: the key16 one with
// Kp[0:16] on the first try, the key32 one (what that suite sends) only
// through the AES-256 retry. The plaintext is 15 360 zero bytes whose
// SHA-256 is blockhash_last of MultipleBlocks.txt.
func TestMSTestBlkDecryptsWithFallback(t *testing.T) {
	k := loadKnown(t)
	table := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")
	for _, tt := range []struct {
		name  string
		tries int
	}{
		{"pccrr_blk_seg0_blk1_key16_aes128", 1},
		{"pccrr_blk_seg0_blk1_key32_aes256", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			blk := mustParse(t, vectors.Lookup(t, table, tt.name), true).(*Blk)
			if blk.Crypto != CryptoAES128 {
				t.Fatalf("header %v, want AES_128", blk.Crypto)
			}
			tries := 0
			verify := func(p []byte) bool {
				tries++
				sum := sha256.Sum256(p)
				return bytes.Equal(sum[:], k.mbLastBlockHash)
			}
			plain, err := DecryptBlock(k.mbKp, blk.Crypto, blk.IV, blk.Block, k.mbLastBlockLen, verify)
			if err != nil {
				t.Fatal(err)
			}
			if tries != tt.tries {
				t.Errorf("verified after %d tries, want %d", tries, tt.tries)
			}
			if len(plain) != 15360 || !bytes.Equal(plain, make([]byte, 15360)) {
				t.Errorf("plaintext of %d bytes is not 15 360 zeros", len(plain))
			}
		})
	}
}

func TestEncryptBlockSizes(t *testing.T) {
	kp, iv := bytes.Repeat([]byte{7}, 32), make([]byte, 16)
	for _, tt := range []struct{ plain, cipher int }{{0, 16}, {1, 16}, {15, 16}, {16, 32}, {15360, 15376}, {65536, 65552}, {131072, 131088}} {
		ct, err := EncryptBlock(kp, CryptoAES256, iv, make([]byte, tt.plain))
		if err != nil || len(ct) != tt.cipher {
			t.Errorf("%d plaintext bytes: %d ciphertext bytes, %v; want %d", tt.plain, len(ct), err, tt.cipher)
		}
		// Invalid padding does not matter on receipt: only plainLen counts.
		ct[len(ct)-1] ^= 0xff
		if _, err := DecryptBlock(kp, CryptoAES256, iv, ct, tt.plain, nil); err != nil {
			t.Errorf("%d bytes with broken padding: %v", tt.plain, err)
		}
	}
}

func TestCryptoErrors(t *testing.T) {
	kp, iv := make([]byte, 32), make([]byte, 16)
	ct := make([]byte, 32)
	tests := []struct {
		name      string
		err       error
		malformed bool
	}{
		{"encrypt short Kp", second(EncryptBlock(kp[:20], CryptoAES192, iv, ct)), false},
		{"encrypt bad IV", second(EncryptBlock(kp, CryptoAES128, iv[:8], ct)), false},
		{"encrypt unknown algo", second(EncryptBlock(kp, 9, iv, ct)), false},
		{"decrypt not multiple of 16", second(DecryptBlock(kp, CryptoAES128, iv, ct[:20], 16, nil)), true},
		{"decrypt shorter than plainLen", second(DecryptBlock(kp, CryptoAES128, iv, ct, 33, nil)), true},
		{"decrypt negative plainLen", second(DecryptBlock(kp, CryptoAES128, iv, ct, -1, nil)), true},
		{"decrypt bad IV", second(DecryptBlock(kp, CryptoAES128, iv[:15], ct, 16, nil)), true},
		{"decrypt short Kp", second(DecryptBlock(kp[:8], CryptoAES128, iv, ct, 16, nil)), false},
		{"decrypt unknown algo", second(DecryptBlock(kp, 4, iv, ct, 16, nil)), false},
		{"none shorter than plainLen", second(DecryptBlock(nil, CryptoNone, nil, ct, 40, nil)), true},
		{"none fails verify", second(DecryptBlock(nil, CryptoNone, nil, ct, 4, func([]byte) bool { return false })), false},
	}
	for _, tt := range tests {
		if tt.err == nil || errors.Is(tt.err, ErrMalformed) != tt.malformed {
			t.Errorf("%s: err %v, want error (malformed %v)", tt.name, tt.err, tt.malformed)
		}
	}
	if p, err := DecryptBlock(nil, CryptoNone, nil, []byte("abcdefgh"), 5, nil); err != nil || string(p) != "abcde" {
		t.Errorf("none passthrough: %q, %v", p, err)
	}
	if p, err := EncryptBlock(nil, CryptoNone, nil, []byte("abcd")); err != nil || string(p) != "abcd" {
		t.Errorf("none encrypt: %q, %v", p, err)
	}
}

func second[T any](_ T, err error) error { return err }

func BenchmarkBlockEncrypt(b *testing.B) {
	kp, iv, plain := bytes.Repeat([]byte{1}, 32), make([]byte, 16), make([]byte, 65536)
	b.SetBytes(65536)
	for b.Loop() {
		if _, err := EncryptBlock(kp, CryptoAES256, iv, plain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlockDecrypt(b *testing.B) {
	kp, iv := bytes.Repeat([]byte{1}, 32), make([]byte, 16)
	ct, _ := EncryptBlock(kp, CryptoAES128, iv, make([]byte, 65536))
	b.SetBytes(65536)
	for b.Loop() {
		if _, err := DecryptBlock(kp, CryptoAES128, iv, ct, 65536, nil); err != nil {
			b.Fatal(err)
		}
	}
}
