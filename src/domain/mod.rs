//! Validated domain values. Raw strings become these once, at the edge; the core trusts them.

mod fields;
mod transaction;

pub use fields::{
    Account, BillNumber, ClientName, CustomerNumber, Documented, IdempotencyKey, InstitutionCode,
    ProductCode, TrxId, ValidationError,
};
pub use transaction::{
    parse_receipt, ReceiptLine, Transaction, TransactionKind, TransactionStatus,
};
