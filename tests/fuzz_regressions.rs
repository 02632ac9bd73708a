//! Inputs the fuzz targets (docs/fuzzing.md) showed to break a parser, fed through the same
//! public functions, with the answer a client should get.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use mpospay_gateway::http::auth::Principal;
use mpospay_gateway::http::error::ApiError;
use mpospay_gateway::http::search::{parse_date, parse_filter};
use mpospay_gateway::keys::Role;

const JAKARTA: chrono_tz::Tz = chrono_tz::Asia::Jakarta;

fn operator() -> Principal {
    Principal {
        client: "pos-web".into(),
        role: Role::Operator,
        request_id: None,
    }
}

fn filter_on(field: &str, value: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let query = HashMap::from([(field.to_string(), value.to_string())]);
    let filter = parse_filter(&query, &operator(), JAKARTA)?;
    Ok(match field {
        "from" => filter.from,
        _ => filter.to,
    })
}

fn assert_malformed(result: Result<Option<DateTime<Utc>>, ApiError>, expected_field: &str) {
    match result {
        Err(ApiError::Malformed { field, .. }) => assert_eq!(field, expected_field),
        other => panic!("expected a 400 on {expected_field}, got {other:?}"),
    }
}

/// `GET /v1/transactions?from=-262143-01-01` (and `/v1/reports/daily?date=` the same): chrono
/// reads the first day it can represent, whose midnight in Jakarta is before the first UTC
/// time; `day_start` panicked on it, taking the request's worker down. Now a 400.
#[test]
fn the_first_representable_day_is_a_bad_date_not_a_panic() {
    assert_malformed(filter_on("from", "-262143-01-01"), "from");
    assert_malformed(filter_on("to", "-262143-01-01"), "to");
    assert_eq!(parse_date("-262143-01-01"), None);
}

/// chrono also reads signed years of any length; years before 4713 BC went through as filter
/// bounds for Postgres to refuse ("timestamp out of range"), a 5xx for a client's mistake. A
/// business date is `YYYY-MM-DD`: years 1 to 9999.
#[test]
fn dates_outside_four_digit_years_are_rejected_at_the_edge() {
    for date in ["-5000-01-01", "-99999-1-1", "+262142-12-31", "0000-01-01"] {
        assert_eq!(parse_date(date), None, "{date}");
        assert_malformed(filter_on("from", date), "from");
        assert_malformed(filter_on("to", date), "to");
    }
}

/// The same parsers still read ordinary dates: the business day in Jakarta (UTC+7), `to`
/// including that whole day.
#[test]
fn ordinary_business_dates_still_bound_the_search() {
    assert_eq!(
        parse_date("2024-02-29"),
        NaiveDate::from_ymd_opt(2024, 2, 29)
    );
    assert_eq!(parse_date("9999-12-31").map(|d| d.year()), Some(9999));
    let from = filter_on("from", "2024-01-31").unwrap().unwrap();
    assert_eq!(from.to_rfc3339(), "2024-01-30T17:00:00+00:00");
    let to = filter_on("to", "2024-01-31").unwrap().unwrap();
    assert_eq!(to.to_rfc3339(), "2024-01-31T17:00:00+00:00");
    let last = filter_on("to", "9999-12-31").unwrap().unwrap();
    assert_eq!(last.year(), 9999);
}
