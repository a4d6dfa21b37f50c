//! The store's write receipts use the same digest as the history checker's model; if the two
//! ever diverged, every write would look illegal to the checker.

use proptest::prelude::*;

proptest! {
    #[test]
    fn server_and_checker_digests_agree(text in ".{0,200}") {
        prop_assert_eq!(cores::kv::value_digest(&text), checkers::models::kv::value_digest(&text));
    }
}

#[test]
fn digests_distinguish_reorderings() {
    assert_ne!(cores::kv::value_digest("x 1 0 yx 2 0 y"), cores::kv::value_digest("x 2 0 yx 1 0 y"));
    assert_eq!(cores::kv::value_digest(""), 0);
}
