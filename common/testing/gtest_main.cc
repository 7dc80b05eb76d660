// GoogleTest's main with one addition: every test case starts with an empty nonce ledger
// (common/crypto/nonce_ledger.h), since test cases are separate worlds that reuse fixed keys and
// seeded randomness on purpose. A repeat within one test case still aborts it.
#include "common/crypto/nonce_ledger.h"
#include "gtest/gtest.h"

namespace {

class FreshLedgerPerTest : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo&) override { edgelink::crypto::NonceLedgerReset(); }
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new FreshLedgerPerTest);
  return RUN_ALL_TESTS();
}
