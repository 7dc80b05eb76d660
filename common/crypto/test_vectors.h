// Published known-answer vectors, shared by crypto_test and crypto_vectors (testonly).
#ifndef EDGELINK_COMMON_CRYPTO_TEST_VECTORS_H_
#define EDGELINK_COMMON_CRYPTO_TEST_VECTORS_H_

#include <cstddef>

namespace edgelink::crypto::testing {

// Byte strings are hex; `repeat` > 0 means "the byte `hex` repeated that many times".
struct HexOrRepeat {
  const char* hex;
  size_t repeat = 0;
};

// RFC 4231, section 4: HMAC-SHA-256 test cases 1-7. Case 5 publishes only a 128-bit truncation.
struct HmacVector {
  const char* name;
  HexOrRepeat key;
  HexOrRepeat data;
  const char* mac;
};

inline constexpr HmacVector kRfc4231[] = {
    {"rfc4231_case1", {"0b", 20}, {"4869205468657265"},  // "Hi There"
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"rfc4231_case2", {"4a656665"},  // "Jefe"
     {"7768617420646f2079612077616e7420666f72206e6f7468696e673f"},
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"rfc4231_case3", {"aa", 20}, {"dd", 50},
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"rfc4231_case4", {"0102030405060708090a0b0c0d0e0f10111213141516171819"}, {"cd", 50},
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"rfc4231_case5", {"0c", 20}, {"546573742057697468205472756e636174696f6e"},
     "a3b6167473100ee06e0c796c2955552b"},
    {"rfc4231_case6", {"aa", 131},
     {"54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
      "617368204b6579204669727374"},
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"rfc4231_case7", {"aa", 131},
     {"5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d"
      "73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174"
      "612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e"
      "6720757365642062792074686520484d414320616c676f726974686d2e"},
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

// RFC 5869, appendix A: the SHA-256 test cases 1-3.
struct HkdfVector {
  const char* name;
  const char* ikm;
  const char* salt;
  const char* info;
  size_t length;
  const char* prk;
  const char* okm;
};

inline constexpr HkdfVector kRfc5869[] = {
    {"rfc5869_case1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
     "f0f1f2f3f4f5f6f7f8f9", 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"rfc5869_case2",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
     "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
     "404142434445464748494a4b4c4d4e4f",
     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
     "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
     "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeef"
     "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     82, "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
     "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
     "cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"rfc5869_case3", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

// The GCM specification (McGrew and Viega, "The Galois/Counter Mode of Operation"), AES-128 test
// cases 1-4: the ones with a 96-bit IV. Cases 5 and 6 use 64- and 480-bit IVs, which Aead refuses.
struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* plaintext;
  const char* aad;
  const char* ciphertext;
  const char* tag;
};

inline constexpr char kGcmKey3[] = "feffe9928665731c6d6a8f9467308308";
inline constexpr char kGcmIv3[] = "cafebabefacedbaddecaf888";

inline constexpr GcmVector kGcmSpec[] = {
    {"gcm_case1", "00000000000000000000000000000000", "000000000000000000000000", "", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"},
    {"gcm_case2", "00000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "0388dace60b6a392f328c2b971b2fe78",
     "ab6e47d42cec13bdf53a67b21257bddf"},
    {"gcm_case3", kGcmKey3, kGcmIv3,
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"gcm_case4", kGcmKey3, kGcmIv3,
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
};

// GCM specification cases 5 and 6 (AES-128, non-96-bit IVs): must be refused, not mis-computed.
inline constexpr const char* kGcmUnsupportedIvs[] = {
    "cafebabefacedbad",
    "9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728"
    "c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b",
};

}  // namespace edgelink::crypto::testing

#endif  // EDGELINK_COMMON_CRYPTO_TEST_VECTORS_H_
