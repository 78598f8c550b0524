//! How rows read back as answers, and how the listing's query string is checked.

use super::*;

fn field(err: ApiError) -> &'static str {
    match err {
        ApiError::InvalidParameter(InvalidParameter { field, .. }) => field,
        other => panic!("not a bad parameter: {other:?}"),
    }
}

fn record() -> OrderStatusRow {
    OrderStatusRow {
        order_id: Uuid::from_u128(1),
        name: "Jane Doe".to_owned(),
        note: None,
        status: "shipped".to_owned(),
        payment_status: "paid".to_owned(),
        channel: "web".to_owned(),
        user_id: Some(Uuid::from_u128(2)),
        currency: Some("USD".to_owned()),
        item_count: 3,
        subtotal_minor: Some(2_968),
        tax_minor: Some(237),
        shipping_minor: Some(999),
        total_minor: Some(4_204),
        carrier: Some("UPS".to_owned()),
        tracking_number: Some("1Z999".to_owned()),
        cancel_reason: None,
        payment_failure_reason: None,
        paid_with: Some(Uuid::from_u128(3)),
        placed_at: "2025-01-19T15:04:05Z".parse().unwrap(),
        confirmed_at: Some("2025-01-19T15:05:05Z".parse().unwrap()),
        processing_started_at: Some("2025-01-19T15:06:05Z".parse().unwrap()),
        shipped_at: Some("2025-01-19T15:07:05Z".parse().unwrap()),
        delivered_at: None,
        cancelled_at: None,
        paid_at: Some("2025-01-19T15:05:30Z".parse().unwrap()),
        payment_failed_at: None,
        refunded_at: None,
        stock_status: "shipped".to_owned(),
        updated_at: "2025-01-19T15:07:05Z".parse().unwrap(),
        version: 5,
    }
}

#[test]
fn an_order_reads_with_its_totals_and_timestamps() {
    let json = serde_json::to_value(Order::try_from(record()).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "order_id": Uuid::from_u128(1),
            "name": "Jane Doe",
            "note": null,
            "status": "shipped",
            "payment_status": "paid",
            "stock_status": "shipped",
            "channel": "web",
            "user_id": Uuid::from_u128(2),
            "currency": "USD",
            "item_count": 3,
            "totals": {
                "subtotal": {"value": "29.68", "minor": 2968, "currency": "USD"},
                "tax": {"value": "2.37", "minor": 237, "currency": "USD"},
                "shipping": {"value": "9.99", "minor": 999, "currency": "USD"},
                "total": {"value": "42.04", "minor": 4204, "currency": "USD"},
            },
            "carrier": "UPS",
            "tracking_number": "1Z999",
            "cancel_reason": null,
            "payment_failure_reason": null,
            "paid_with": Uuid::from_u128(3),
            "placed_at": "2025-01-19T15:04:05Z",
            "updated_at": "2025-01-19T15:07:05Z",
            "version": 5,
            "timestamps": {
                "confirmed_at": "2025-01-19T15:05:05Z",
                "processing_started_at": "2025-01-19T15:06:05Z",
                "shipped_at": "2025-01-19T15:07:05Z",
                "delivered_at": null,
                "cancelled_at": null,
                "paid_at": "2025-01-19T15:05:30Z",
                "payment_failed_at": null,
                "refunded_at": null,
            },
        })
    );
}

#[test]
fn an_order_without_items_has_null_totals() {
    let unpriced = OrderStatusRow {
        currency: None,
        subtotal_minor: None,
        tax_minor: None,
        shipping_minor: None,
        total_minor: None,
        item_count: 0,
        user_id: None,
        ..record()
    };
    let json = serde_json::to_value(Order::try_from(unpriced).unwrap()).unwrap();
    assert_eq!(
        (&json["totals"], &json["currency"], &json["item_count"]),
        (
            &serde_json::Value::Null,
            &serde_json::Value::Null,
            &serde_json::json!(0)
        )
    );
}

#[test]
fn totals_the_code_cannot_read_are_a_decoding_error() {
    for broken in [
        OrderStatusRow {
            tax_minor: None,
            ..record()
        },
        OrderStatusRow {
            currency: Some("XXX".to_owned()),
            ..record()
        },
        OrderStatusRow {
            total_minor: Some(-1),
            ..record()
        },
    ] {
        assert!(matches!(Order::try_from(broken), Err(sqlx::Error::ColumnDecode { .. })));
    }
}

#[test]
fn filters_are_checked_and_name_the_parameter_at_fault() {
    let params = |set: fn(&mut ListParams)| {
        let mut params = ListParams::default();
        set(&mut params);
        params
    };
    assert_eq!(
        filter(ListParams::default()).unwrap(),
        Filter {
            limit: 50,
            ..Filter::default()
        }
    );
    let all = filter(ListParams {
        status: Some("cancelled".to_owned()),
        payment_status: Some("refunded".to_owned()),
        user_id: Some("00000000-0000-0000-0000-000000000002".to_owned()),
        name: Some("Jane Doe".to_owned()),
        placed_from: Some("2025-01-19T16:04:05+01:00".to_owned()),
        placed_to: Some("2025-01-20T00:00:00Z".to_owned()),
        limit: Some("10".to_owned()),
        after: None,
    })
    .unwrap();
    assert_eq!(
        all,
        Filter {
            status: Some(OrderStatus::Cancelled),
            payment_status: Some(PaymentStatus::Refunded),
            user_id: Some(Uuid::from_u128(2)),
            name: Some("Jane Doe".to_owned()),
            placed_from: Some("2025-01-19T15:04:05Z".parse().unwrap()),
            placed_to: Some("2025-01-20T00:00:00Z".parse().unwrap()),
            limit: 10,
            after: None,
        }
    );
    for (bad, expected) in [
        (params(|p| p.status = Some("Pending".to_owned())), "status"),
        (params(|p| p.status = Some("paid".to_owned())), "status"),
        (
            params(|p| p.payment_status = Some("authorized".to_owned())),
            "payment_status",
        ),
        (params(|p| p.user_id = Some("42".to_owned())), "user_id"),
        (params(|p| p.placed_from = Some("2025-01-19".to_owned())), "placed_from"),
        (
            params(|p| p.placed_to = Some("2025-01-19T16:04:05 01:00".to_owned())),
            "placed_to",
        ),
        (
            params(|p| {
                p.placed_from = Some("2025-01-20T00:00:00Z".to_owned());
                p.placed_to = Some("2025-01-19T00:00:00Z".to_owned());
            }),
            "placed_to",
        ),
        (
            params(|p| {
                p.placed_from = Some("2025-01-20T00:00:00Z".to_owned());
                p.placed_to = Some("2025-01-20T01:00:00+01:00".to_owned());
            }),
            "placed_to",
        ),
        (params(|p| p.limit = Some("0".to_owned())), "limit"),
        (params(|p| p.after = Some("garbage".to_owned())), "after"),
    ] {
        assert_eq!(field(filter(bad).unwrap_err()), expected);
    }
    let detail = filter(params(|p| p.status = Some("lost".to_owned())))
        .unwrap_err()
        .to_string();
    assert_eq!(
        detail,
        "`status`: must be one of pending, confirmed, processing, shipped, delivered, cancelled, got `lost`"
    );
}

#[test]
fn a_page_says_where_the_next_starts_only_when_there_is_one() {
    let order = |n: u128| {
        Order::try_from(OrderStatusRow {
            order_id: Uuid::from_u128(n),
            ..record()
        })
        .unwrap()
    };
    let full = page(vec![order(3), order(2), order(1)], 2);
    assert_eq!(full.items.len(), 2);
    let next = Cursor::decode(full.next_after.as_deref().unwrap()).unwrap();
    assert_eq!(next.id, Uuid::from_u128(2));
    let last = page(vec![order(3), order(2)], 2);
    assert_eq!((last.items.len(), last.next_after), (2, None));
}

#[test]
fn history_data_passes_through_as_json() {
    let event = HistoryEvent::try_from(HistoryRow {
        order_id: Uuid::from_u128(1),
        version: 2,
        event_type: "orderstream.order.confirmed.v1".to_owned(),
        occurred_at: "2025-01-19T15:05:05Z".parse().unwrap(),
        data: r#"{"order_id": "00000000-0000-0000-0000-000000000001", "confirmed_at": "2025-01-19T15:05:05Z"}"#
            .to_owned(),
        log_partition: Some(3),
        log_offset: Some(17),
        command_id: None,
        trace_id: None,
    })
    .unwrap();
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        serde_json::json!({
            "version": 2,
            "type": "orderstream.order.confirmed.v1",
            "occurred_at": "2025-01-19T15:05:05Z",
            "data": {"order_id": "00000000-0000-0000-0000-000000000001", "confirmed_at": "2025-01-19T15:05:05Z"},
        })
    );
}
