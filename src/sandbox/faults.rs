//! Injectable faults: the magic bill numbers (`99ccc…`, `98ccc…`, `97ddd…`), the per-instance
//! [`ForcedFault`], and the result texts the simulator answers with. The table in
//! `docs/sandbox.md` documents all of it.

use std::time::Duration;

use crate::h2h::MessageType;

/// A fault that applies to every message an instance receives, settable at run time with
/// `SandboxHandle::set_forced_fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForcedFault {
    /// Every authenticated, parsed message answers this result code (normally `102` or `998`)
    /// without being validated or processed.
    Maintenance(String),
    /// Messages of this type are processed normally (a payment IS applied) but answered with
    /// HTTP 200 and a body that is not JSON.
    Garbage(MessageType),
    /// Every message is accepted and held without an answer until the sandbox stops; nothing
    /// is processed. The connection is then dropped.
    Blackhole,
    /// Every message is processed normally and its answer sent after this delay.
    Delay(Duration),
}

/// What a bill number or customer number asks the simulator to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Magic {
    /// An ordinary number: looked up in the catalog.
    None,
    /// `99ccc…`: the first message of the flow (inquiry or purchase) answers `ccc`.
    FirstMessage(String),
    /// `98ccc…`: the inquiry succeeds; the payment answers `ccc` and is not applied. On a
    /// purchase (the first message) this behaves like `99ccc`.
    Payment(String),
    /// `97ddd…`: the inquiry succeeds; the payment (or the purchase) meets a transport fault.
    Transport(TransportFault),
    /// A `97`/`98`/`99` number whose code means nothing special (`…000`, unlisted `97ddd`):
    /// behaves like a test bill that always succeeds.
    TestBill,
}

/// The transport faults of `97ddd…` bill numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportFault {
    /// `97001`: applied, the answer is lost (the connection drops mid-answer).
    LostApplied,
    /// `97002`: applied, answered after `late_delay`.
    Late,
    /// `97003`: applied, HTTP 500 with a short HTML body.
    ServerError,
    /// `97004`: applied, HTTP 200 with a body that is not JSON.
    NotJson,
    /// `97005`: not applied (the host never got it) and the answer is lost.
    LostNotApplied,
    /// `97006`: applied, the answer is lost, and every advice for it answers `102`.
    LostUnresolvable,
    /// `97007`: applied, answered `995` (already paid); the advice answers the success.
    AnsweredAlreadyPaid,
    /// `97008`: applied, the answer is cut: HTTP 200 and half the JSON body, then the
    /// connection drops.
    Truncated,
}

impl Magic {
    /// Reads the magic prefix of a bill number.
    pub(crate) fn of(bill_number: &str) -> Magic {
        let (Some(prefix), Some(code)) = (bill_number.get(..2), bill_number.get(2..5)) else {
            return Magic::None;
        };
        match prefix {
            "99" if code == "000" => Magic::TestBill,
            "99" => Magic::FirstMessage(code.to_string()),
            "98" if code == "000" => Magic::TestBill,
            "98" => Magic::Payment(code.to_string()),
            "97" => match code {
                "001" => Magic::Transport(TransportFault::LostApplied),
                "002" => Magic::Transport(TransportFault::Late),
                "003" => Magic::Transport(TransportFault::ServerError),
                "004" => Magic::Transport(TransportFault::NotJson),
                "005" => Magic::Transport(TransportFault::LostNotApplied),
                "006" => Magic::Transport(TransportFault::LostUnresolvable),
                "007" => Magic::Transport(TransportFault::AnsweredAlreadyPaid),
                "008" => Magic::Transport(TransportFault::Truncated),
                _ => Magic::TestBill,
            },
            _ => Magic::None,
        }
    }

    /// Whether the number is served by the generic test bill ("Pelanggan Uji") on inquiry.
    pub(crate) fn is_test_bill(&self) -> bool {
        !matches!(self, Magic::None | Magic::FirstMessage(_))
    }
}

/// Codes the simulator answers that the vendor does not list: biller codes of its own.
pub mod biller {
    /// Unknown bill number for a known postpaid product.
    pub const BILL_NOT_FOUND: &str = "014";
    /// Purchase customer number that the product does not accept.
    pub const INVALID_CUSTOMER_NUMBER: &str = "015";
    /// The deposit balance does not cover nominal + admin.
    pub const INSUFFICIENT_BALANCE: &str = "051";
}

/// The text the simulator answers a result code with. The vendor's own texts for the codes it
/// lists (993–996 differ between inquiry/purchase and payment/advice), a few biller texts, and
/// `Biller error ccc` for any other code.
pub fn result_desc(code: &str, message_type: Option<MessageType>) -> String {
    let payment_side = matches!(
        message_type,
        Some(MessageType::Payment | MessageType::Advice)
    );
    let text = match (code, payment_side) {
        ("000", _) => "SUKSES",
        ("00", _) => "success",
        ("102", _) => "Mohon maaf, System dalam maintenance. Mohon coba kembali 3 menit kedepan",
        ("103" | "105", _) => "Mohon maaf, Transaksi tidak bisa dilakukan di atas cutt of time",
        ("104", _) => "Kode Produk tidak valid",
        ("106", _) => "Mandatory field tidak valid (tidak boleh kosong)",
        ("107", _) => "Panjang trxId tidak valid",
        ("108", _) => "Content message dari database kosong",
        ("109", _) => "Gagal proses database",
        ("198", _) => "Gagal proses message",
        ("301", _) => "Parameter kosong (tidak valid)",
        ("991", _) => "Member belum memiliki harga referensi untuk produk ini",
        ("992", _) => "Account anda terblokir. Mohon hubungi adminstrator",
        ("993", false) => "Service (Produk) belum memiliki routing host",
        ("993", true) => "Service (Produk) belum memiliki routing host (reqPay)",
        ("994", false) => "Signature is not match",
        ("994", true) => "Signature is not match (reqPay)",
        ("995", false) => "Produk tidak valid atau tidak aktif",
        ("995", true) => "paymentCode ini sudah di-payment. Lakukan cek status (reqPayment)",
        ("996", false) => "Kode institution tidak valid atau tidak ditemukan",
        ("996", true) => "paymentCode tidak ditemukan (reqPayment)",
        ("997", _) => "Parameter tidak valid",
        ("998", _) => "Mohon maaf, service B2B sedang maintenance",
        (biller::BILL_NOT_FOUND, _) => "Nomor tagihan tidak ditemukan",
        (biller::INVALID_CUSTOMER_NUMBER, _) => "Nomor pelanggan tidak valid",
        (biller::INSUFFICIENT_BALANCE, _) => "Saldo deposit tidak mencukupi",
        ("034", _) => "Tagihan sudah lunas",
        ("047", _) => "Nomor pelanggan diblokir oleh biller",
        ("063", _) => "Transaksi ditolak biller",
        ("090", _) => "Biller sedang cut off, silakan coba beberapa saat lagi",
        _ => return format!("Biller error {code}"),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_read_as_documented() {
        assert_eq!(Magic::of("99102"), Magic::FirstMessage("102".into()));
        assert_eq!(Magic::of("99998000001"), Magic::FirstMessage("998".into()));
        assert_eq!(Magic::of("98051123"), Magic::Payment("051".into()));
        assert_eq!(
            Magic::of("970010000001"),
            Magic::Transport(TransportFault::LostApplied)
        );
        assert_eq!(
            Magic::of("97007"),
            Magic::Transport(TransportFault::AnsweredAlreadyPaid)
        );
        assert_eq!(Magic::of("97999"), Magic::TestBill);
        assert_eq!(Magic::of("99000"), Magic::TestBill);
        assert_eq!(Magic::of("9910"), Magic::None);
        assert_eq!(Magic::of("AF085713323054"), Magic::None);
        assert_eq!(Magic::of("08132259999"), Magic::None);
        // Multi-byte characters never split a prefix.
        assert_eq!(Magic::of("9é123"), Magic::None);
    }

    #[test]
    fn texts_depend_on_the_message_side_for_993_to_996() {
        assert_eq!(
            result_desc("996", Some(MessageType::Inquiry)),
            "Kode institution tidak valid atau tidak ditemukan"
        );
        assert_eq!(
            result_desc("996", Some(MessageType::Payment)),
            "paymentCode tidak ditemukan (reqPayment)"
        );
        assert_eq!(
            result_desc("995", Some(MessageType::Advice)),
            "paymentCode ini sudah di-payment. Lakukan cek status (reqPayment)"
        );
        assert_eq!(result_desc("Q42", None), "Biller error Q42");
        assert_eq!(result_desc("014", None), "Nomor tagihan tidak ditemukan");
    }
}
