//! The receipt parser (`domain::parse_receipt`): the upstream's `info1`, `Label : value` pairs
//! separated by `|`, shown to finance staff and clients.
//!
//! Properties: no line is empty, labels and values are trimmed with whitespace runs folded,
//! no label holds `:` or `|` and no value holds `|`; there are never more lines than `|`-parts;
//! and printing the lines back as `label : value|…` parses to the same lines.

#![no_main]

use chrono::Utc;
use libfuzzer_sys::fuzz_target;
use mpospay_gateway::domain::{parse_receipt, ReceiptLine, Transaction, TransactionKind};

fuzz_target!(|data: &[u8]| {
    // info1 comes out of a JSON string: always valid UTF-8, possibly any of it.
    let info = String::from_utf8_lossy(data);
    let lines = parse_receipt(&info);

    assert!(lines.len() <= info.split('|').count());
    for line in &lines {
        assert!(!(line.label.is_empty() && line.value.is_empty()) || info.contains(':'));
        for text in [&line.label, &line.value] {
            assert_eq!(text.trim(), text.as_str(), "not trimmed: {line:?}");
            assert!(!text.contains('|'), "holds a separator: {line:?}");
            assert!(
                !text.split(' ').any(str::is_empty) || text.is_empty(),
                "whitespace not folded: {line:?}"
            );
            assert!(
                !text.chars().any(|c| c.is_whitespace() && c != ' '),
                "whitespace not folded: {line:?}"
            );
        }
        assert!(!line.label.contains(':'), "label holds a colon: {line:?}");
    }

    // The parsed form is a fixed point.
    let printed: String = lines
        .iter()
        .map(|ReceiptLine { label, value }| format!("{label} : {value}|"))
        .collect();
    assert_eq!(parse_receipt(&printed), lines, "printed as {printed:?}");

    // The customer's name, when the receipt names one, is never blank.
    let mut transaction = Transaction::begin(
        TransactionKind::Inquiry,
        "fuzz",
        "2042",
        "AF085713323054",
        "00000001",
        "20180125003025879",
        Utc::now(),
    );
    transaction.info1 = Some(info.into_owned());
    assert_eq!(transaction.receipt(), lines);
    if let Some(name) = transaction.customer_name() {
        assert!(!name.trim().is_empty());
    }
});
