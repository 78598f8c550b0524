//! The load: workers that place orders (some of them of a catalog product, reserving its stock
//! until it runs out), request purchases and refund some of them through the command-api
//! replicas, each command retried on the same `Idempotency-Key` (on the other replica) until it
//! is acknowledged, and the ledger of everything acknowledged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Value};
use service_kit::auth::{mint_hs256, ALL_SCOPES};
use service_kit::secret::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use crate::Settings;

/// One request's bound; a command is retried past it, on the same key.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Customer names per run: several orders land on each `track_user` counter.
const NAMES: u64 = 20;
/// Buyers per run: several purchases add up in each `user_spend` row.
const USERS: u64 = 10;
/// One purchase in this many is partly refunded.
const REFUND_EVERY: u64 = 3;
/// Units of the run's catalog product received before the load: enough for some of the catalog
/// orders, so the reservation saga both reserves and runs out (the rest are cancelled).
pub(crate) const STOCKED: i64 = 200;
/// Per cent of the commands that are orders of the catalog product.
const CATALOG_SHARE: u64 = 15;
/// How long after its acknowledgement a purchase is first asked for a refund (the gateway
/// authorizes it meanwhile; before that the refund is refused and asked again under a new key).
const REFUND_AFTER: Duration = Duration::from_secs(1);

/// A number below `bound`, for the driver's random choices (no seed to replay: each run differs).
pub(crate) fn random_below(bound: u64) -> u64 {
    (Uuid::new_v4().as_u128() % u128::from(bound.max(1))) as u64
}

/// An order the API acknowledged (201).
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) order_id: Uuid,
    pub(crate) name: String,
}

/// An order of `quantity` units of the run's catalog product the API acknowledged (201); also
/// among the [`Order`]s.
#[derive(Debug, Clone)]
pub(crate) struct CatalogOrder {
    pub(crate) order_id: Uuid,
    pub(crate) quantity: i64,
}

/// A purchase the API acknowledged (202), in USD cents.
#[derive(Debug, Clone)]
pub(crate) struct Purchase {
    pub(crate) purchase_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) amount_minor: i64,
}

/// A refund the API acknowledged (202: requested; the gateway pays it back afterwards), in USD
/// cents.
#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub(crate) refund_id: Uuid,
    pub(crate) purchase_id: Uuid,
    pub(crate) amount_minor: i64,
}

/// Everything the load was told, as it was told.
#[derive(Debug, Default, Clone)]
pub(crate) struct Acknowledged {
    pub(crate) orders: Vec<Order>,
    /// The SKU of the run's catalog product, once it is defined and stocked.
    pub(crate) sku: Option<String>,
    pub(crate) catalog_orders: Vec<CatalogOrder>,
    pub(crate) purchases: Vec<Purchase>,
    pub(crate) refunds: Vec<Refund>,
    /// When each command was acknowledged, in the order they were.
    pub(crate) acks: Vec<Instant>,
    /// Requests sent again (same key) after an error, a timeout or a 5xx.
    pub(crate) retries: u64,
    /// Commands still not acknowledged at their deadline: what they did is unknown.
    pub(crate) lost: Vec<String>,
    /// Answers no fault explains (a 4xx to a valid command, a body without its id).
    pub(crate) unexpected: Vec<String>,
}

/// The ledger the workers write to.
#[derive(Debug, Default)]
pub(crate) struct Ledger(Mutex<Acknowledged>);

impl Ledger {
    fn write(&self) -> MutexGuard<'_, Acknowledged> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Acknowledged {
        self.write().clone()
    }
}

/// The running workers.
#[derive(Debug)]
pub(crate) struct Load {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Defines the run's catalog product with [`STOCKED`] units, then starts
    /// `settings.concurrency` workers, each sending one command at a time.
    pub(crate) async fn start(settings: &Settings, ledger: Arc<Ledger>) -> anyhow::Result<Self> {
        let token = mint_hs256(
            settings.jwt_secret.expose_secret(),
            "chaos-driver",
            &ALL_SCOPES,
            Duration::from_secs(24 * 60 * 60),
            None,
            None,
        )
        .context("minting the driver's token")?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?);
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()?;
        let run = Uuid::new_v4().simple().to_string();
        let driver = Arc::new(Driver {
            client,
            replicas: settings.command_api_urls.clone(),
            command_deadline: settings.command_deadline,
            names: (0..NAMES).map(|n| format!("chaos {} {n}", &run[..8])).collect(),
            sku: format!("CHAOS-{}", &run[..8]).to_uppercase(),
            users: (0..USERS).map(|_| Uuid::new_v4()).collect(),
            refunds: Mutex::default(),
            ledger,
        });
        driver.stock().await?;
        let (stop, _) = watch::channel(false);
        let workers = (0..settings.concurrency)
            .map(|_| {
                let (driver, stop) = (driver.clone(), stop.subscribe());
                tokio::spawn(async move {
                    while !*stop.borrow() {
                        driver.next().await;
                    }
                })
            })
            .collect();
        Ok(Self { stop, workers })
    }

    /// Lets every worker finish the command it is sending (retried until acknowledged or lost),
    /// then returns.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
    }
}

/// What sending one command until it is answered came to.
enum Answer {
    /// Acknowledged, with the response body.
    Acknowledged(Value),
    /// Refused with a final status and its problem.
    Refused(StatusCode, Value),
    /// Not acknowledged before the command's deadline.
    Lost,
}

#[derive(Debug)]
struct Driver {
    client: reqwest::Client,
    replicas: Vec<String>,
    command_deadline: Duration,
    names: Vec<String>,
    sku: String,
    users: Vec<Uuid>,
    /// Purchases to refund, each with the moment to (try to) do it.
    refunds: Mutex<VecDeque<(Instant, Purchase)>>,
    ledger: Arc<Ledger>,
}

impl Driver {
    /// Sends the next command: a refund that is due, else a purchase, an order of the catalog
    /// product or an order of free items.
    async fn next(&self) {
        let dice = random_below(100);
        if let Some(purchase) = self.due_refund() {
            self.refund(purchase).await;
        } else if dice < 35 {
            self.purchase().await;
        } else if dice < 35 + CATALOG_SHARE {
            self.catalog_order().await;
        } else {
            self.order().await;
        }
    }

    /// Defines the run's product and receives [`STOCKED`] units of it, each command retried
    /// until acknowledged: the load cannot start without them.
    async fn stock(&self) -> anyhow::Result<()> {
        let path = format!("/api/v1/products/{}", self.sku);
        let definition = json!({"name": "Chaos widget", "price": 2.5, "currency": "USD"});
        let give_up = Instant::now() + self.command_deadline;
        loop {
            let defined = self
                .client
                .put(format!("{}{path}", self.replicas[0]))
                .json(&definition)
                .send()
                .await;
            match defined {
                Ok(response) if response.status().is_success() => break,
                Ok(response) if response.status().is_client_error() => {
                    anyhow::bail!("defining {}: {}", self.sku, response.status())
                }
                _ if Instant::now() >= give_up => anyhow::bail!("defining {} was never acknowledged", self.sku),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let what = format!("receipt of {STOCKED} units of {}", self.sku);
        let receipt = json!({ "quantity": STOCKED });
        match self.send(&what, &format!("{path}/stock-receipts"), &receipt).await {
            Answer::Acknowledged(_) => {
                self.ledger.write().sku = Some(self.sku.clone());
                Ok(())
            }
            Answer::Refused(status, problem) => anyhow::bail!("{what}: {status} {problem}"),
            Answer::Lost => anyhow::bail!("{what} was never acknowledged"),
        }
    }

    fn due_refund(&self) -> Option<Purchase> {
        let mut queue = self.refunds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if queue.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            queue.pop_front().map(|(_, purchase)| purchase)
        } else {
            None
        }
    }

    fn refund_later(&self, purchase: Purchase, after: Duration) {
        let mut queue = self.refunds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.push_back((Instant::now() + after, purchase));
    }

    async fn order(&self) {
        let name = self.names[random_below(NAMES) as usize].clone();
        let what = format!("order for {name:?}");
        let body = json!({ "name": name, "note": "chaos" });
        if let Some(order_id) = self.acknowledged_id(&what, "/api/v1/orders", &body, "order_id").await {
            let mut ledger = self.ledger.write();
            ledger.orders.push(Order { order_id, name });
            ledger.acks.push(Instant::now());
        }
    }

    /// An order of one to three units of the catalog product, at the catalog's price: reserved
    /// while stock lasts, cancelled as out of stock after.
    async fn catalog_order(&self) {
        let name = self.names[random_below(NAMES) as usize].clone();
        let quantity = 1 + random_below(3) as i64;
        let what = format!("order of {quantity} {} for {name:?}", self.sku);
        let body = json!({
            "name": name,
            "note": "chaos",
            "currency": "USD",
            "items": [{ "sku": self.sku, "quantity": quantity }],
        });
        if let Some(order_id) = self.acknowledged_id(&what, "/api/v1/orders", &body, "order_id").await {
            let mut ledger = self.ledger.write();
            ledger.orders.push(Order { order_id, name });
            ledger.catalog_orders.push(CatalogOrder { order_id, quantity });
            ledger.acks.push(Instant::now());
        }
    }

    async fn purchase(&self) {
        let user_id = self.users[random_below(USERS) as usize];
        let amount_minor = 100 + random_below(9_900) as i64;
        let body = json!({
            "user_id": user_id,
            "username": "chaos",
            "amount": major_units(amount_minor),
            "currency": "USD",
            "payment_method": "credit_card",
            "card_holder_name": "Chaos Monkey",
            "card_number": "4242424242424242",
            "card_expiry": "12/30",
            "card_cvc": "123",
            "transaction_date": chrono::Utc::now().to_rfc3339(),
        });
        let what = format!("purchase of {amount_minor} cents by {user_id}");
        if let Some(purchase_id) = self
            .acknowledged_id(&what, "/api/v1/purchases", &body, "purchase_id")
            .await
        {
            let purchase = Purchase {
                purchase_id,
                user_id,
                amount_minor,
            };
            let count = {
                let mut ledger = self.ledger.write();
                ledger.purchases.push(purchase.clone());
                ledger.acks.push(Instant::now());
                ledger.purchases.len() as u64
            };
            if count % REFUND_EVERY == 0 {
                self.refund_later(purchase, REFUND_AFTER);
            }
        }
    }

    /// Refunds half of `purchase`. Until the gateway has authorized it the refund is refused
    /// (and writes nothing); it is then asked again later, under a new key.
    async fn refund(&self, purchase: Purchase) {
        let amount_minor = (purchase.amount_minor / 2).max(1);
        let path = format!("/api/v1/purchases/{}/refunds", purchase.purchase_id);
        let body = json!({ "amount": major_units(amount_minor), "reason": "chaos" });
        let what = format!("refund of {amount_minor} cents of {}", purchase.purchase_id);
        match self.send(&what, &path, &body).await {
            Answer::Acknowledged(answer) => {
                if let Some(refund_id) = self.id_in(&what, &answer, "refund_id") {
                    let mut ledger = self.ledger.write();
                    ledger.refunds.push(Refund {
                        refund_id,
                        purchase_id: purchase.purchase_id,
                        amount_minor,
                    });
                    ledger.acks.push(Instant::now());
                }
            }
            Answer::Refused(StatusCode::CONFLICT, problem)
                if problem["type"] == "/problems/purchase-not-refundable"
                    && problem["purchase_status"] == "requested" =>
            {
                self.refund_later(purchase, REFUND_AFTER);
            }
            Answer::Refused(status, problem) => self.unexpected(format!("{what}: {status} {problem}")),
            Answer::Lost => self.ledger.write().lost.push(what),
        }
    }

    /// Sends the command until acknowledged and returns the id named `field` of its answer.
    async fn acknowledged_id(&self, what: &str, path: &str, body: &Value, field: &str) -> Option<Uuid> {
        match self.send(what, path, body).await {
            Answer::Acknowledged(answer) => self.id_in(what, &answer, field),
            Answer::Refused(status, problem) => {
                self.unexpected(format!("{what}: {status} {problem}"));
                None
            }
            Answer::Lost => {
                self.ledger.write().lost.push(what.to_owned());
                None
            }
        }
    }

    fn id_in(&self, what: &str, answer: &Value, field: &str) -> Option<Uuid> {
        let id = answer[field].as_str().and_then(|id| id.parse().ok());
        if id.is_none() {
            self.unexpected(format!("{what}: no {field} in {answer}"));
        }
        id
    }

    fn unexpected(&self, answer: String) {
        self.ledger.write().unexpected.push(answer);
    }

    /// POSTs `body` under one fresh `Idempotency-Key`, starting on a random replica and moving to
    /// the next one after every failure, until it is acknowledged (2xx) or finally refused (4xx
    /// other than 408 and 429), or its deadline passes.
    async fn send(&self, what: &str, path: &str, body: &Value) -> Answer {
        let key = Uuid::new_v4().to_string();
        let give_up = Instant::now() + self.command_deadline;
        let mut replica = random_below(self.replicas.len() as u64) as usize;
        let mut attempt = 0;
        loop {
            let url = format!("{}{path}", self.replicas[replica]);
            let sent = self
                .client
                .post(url)
                .header("idempotency-key", &key)
                .json(body)
                .send()
                .await;
            if let Ok(response) = sent {
                let status = response.status();
                let final_refusal = status.is_client_error()
                    && status != StatusCode::REQUEST_TIMEOUT
                    && status != StatusCode::TOO_MANY_REQUESTS;
                // A body cut off by a kill is retried like a lost connection.
                if let Ok(answer) = response.json::<Value>().await {
                    if status.is_success() {
                        return Answer::Acknowledged(answer);
                    }
                    if final_refusal {
                        return Answer::Refused(status, answer);
                    }
                }
            }
            attempt += 1;
            self.ledger.write().retries += 1;
            if Instant::now() >= give_up {
                eprintln!("chaos: giving up on {what} after {attempt} attempts");
                return Answer::Lost;
            }
            replica = (replica + 1) % self.replicas.len();
            // Paced retries: 50 ms doubling up to 1 s, so a dead replica is not hammered.
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(4))).await;
        }
    }
}

/// `minor` cents as the JSON number of dollars the API takes (`1234` → `12.34`).
fn major_units(minor: i64) -> Value {
    json!(minor as f64 / 100.0)
}
