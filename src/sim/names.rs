//! Realistic test names per dialect, and the failure messages tests fail with.

use std::collections::HashSet;

use super::config::Dialect;
use super::rng::{mix, Rng};

/// A generated test, before the world gives it flakiness and timings.
#[derive(Debug, Clone)]
pub struct GenTest {
    pub classname: String,
    pub name: String,
    /// The `file` attribute, for dialects that write one.
    pub file: Option<String>,
    /// How the writer groups cases into `<testsuite>`s (or files).
    pub suite: String,
    /// Local index of the parent (Go subtests).
    pub parent: Option<usize>,
    /// Source file named in stack traces.
    pub src: String,
    /// Short function or method name used in traces.
    pub func: String,
}

const JAVA_MODULES: &[&str] = &[
    "payment",
    "billing",
    "catalog",
    "inventory",
    "auth",
    "shipping",
    "notify",
    "search",
    "ledger",
    "cart",
    "pricing",
    "tax",
];
const JAVA_NOUNS: &[&str] = &[
    "PaymentService",
    "RefundPolicy",
    "InvoiceRenderer",
    "CurrencyConverter",
    "TokenValidator",
    "LedgerWriter",
    "OrderRepository",
    "WebhookDispatcher",
    "RateLimiter",
    "SessionCache",
    "TaxCalculator",
    "CouponEngine",
    "StockReservation",
    "ShipmentTracker",
    "SearchIndexer",
    "AuditLog",
    "EmailTemplate",
    "FraudScorer",
    "PriceBook",
    "CartMerger",
    "IbanParser",
    "SettlementJob",
    "ReceiptMailer",
    "PayoutScheduler",
];
const JAVA_VERBS: &[&str] = &[
    "creates",
    "rejects",
    "refunds",
    "retries",
    "parses",
    "rounds",
    "caches",
    "expires",
    "publishes",
    "validates",
    "serializes",
    "handles",
    "computes",
    "locks",
    "streams",
    "merges",
    "settles",
    "reconciles",
];
const JAVA_OBJECTS: &[&str] = &[
    "Invoice", "Token", "Refund", "Payment", "Order", "Cart", "Ledger", "Event", "Batch",
    "Currency", "Webhook", "Session", "Coupon", "Payout", "Receipt",
];
const JAVA_QUALIFIERS: &[&str] = &[
    "",
    "Twice",
    "WhenExpired",
    "OnTimeout",
    "Concurrently",
    "WithNullInput",
    "ForZeroAmount",
    "AfterRestart",
    "InParallel",
    "Idempotently",
    "OnRetry",
    "",
];
const JAVA_PARAMS: &[&str] = &[
    "(String, int)",
    "(String, BigDecimal)",
    "(Currency)",
    "(int)",
];

const PY_AREAS: &[&str] = &[
    "payment",
    "checkout",
    "orders",
    "refunds",
    "inventory",
    "users",
    "auth",
    "webhooks",
    "search",
    "shipping",
    "reports",
    "exports",
];
const PY_VERBS: &[&str] = &[
    "create",
    "refund",
    "cancel",
    "list",
    "retry",
    "update",
    "delete",
    "export",
    "sync",
    "search",
    "paginate",
    "authorize",
    "checkout",
];
const PY_OBJECTS: &[&str] = &[
    "order", "refund", "invoice", "user", "token", "webhook", "report", "cart", "item", "session",
    "flow", "twice",
];
const PY_PARAMS: &[&str] = &[
    "[visa-EUR]",
    "[amex-USD]",
    "[mastercard-GBP]",
    "[0.5-3]",
    "[1-10]",
    "[None]",
    "[a.b*c]",
    "[user@example.com]",
    "[path/to/file.csv]",
    "[\u{e9}t\u{e9}-fr_FR]",
    "[empty-]",
    "[x?y+z]",
    "[(1, 2)]",
    "[True-False]",
    "[^abc$]",
];

const GO_PACKAGES: &[&str] = &[
    "internal/queue",
    "pkg/router",
    "internal/store/pg",
    "pkg/ratelimit",
    "internal/auth",
    "pkg/retry",
    "internal/billing",
    "cmd/worker",
    "pkg/codec",
    "internal/cache",
];
const GO_THINGS: &[&str] = &[
    "Queue", "Router", "Store", "Limiter", "Token", "Backoff", "Ledger", "Worker", "Cache",
    "Parser", "Codec", "Pool",
];
const GO_VERBS: &[&str] = &[
    "",
    "Drain",
    "Match",
    "Close",
    "Retry",
    "Concurrent",
    "Timeout",
    "Encode",
    "Decode",
    "Evict",
];
const GO_SUBTESTS: &[&str] = &[
    "drains_on_close",
    "empty_input",
    "nil_context",
    "GET_/api/v1/items/{id}",
    "pattern=^a.*b$",
    "size=1024",
    "#00",
    "#01",
    "unicode_\u{2713}",
    "timeout=50ms",
    "with_retries/3",
    "a+b=c",
    "closed_channel",
    "max_int64",
    "[brackets]",
];

const JEST_DESCRIBES: &[(&str, &str)] = &[
    ("Cart component", "src/components/Cart.test.tsx"),
    ("CheckoutForm", "src/components/CheckoutForm.test.tsx"),
    ("useDebounce hook", "src/hooks/useDebounce.test.ts"),
    ("price formatter", "src/lib/price.test.ts"),
    ("api client", "src/lib/api.test.ts"),
    (
        "AddressAutocomplete",
        "src/components/AddressAutocomplete.test.tsx",
    ),
    ("OrderHistory page", "src/pages/OrderHistory.test.tsx"),
    ("auth reducer", "src/store/auth.test.ts"),
    ("date utils", "src/lib/date.test.ts"),
    ("SearchBar", "src/components/SearchBar.test.tsx"),
    ("Toast queue", "src/components/Toast.test.tsx"),
];
const JEST_TITLES: &[&str] = &[
    "renders total",
    "applies discount code (10% off)",
    "shows error when card is declined",
    "formats $1,234.50 in en-US",
    "matches /^\\d{3}-\\d{4}$/ pattern",
    "handles [] and {} payloads",
    "debounces input by 300ms",
    "retries on 503",
    "calls onSubmit once",
    "is accessible (axe)",
    "renders empty state",
    "sorts by date desc",
    "keeps focus after re-render",
    "supports <Enter> key",
    "escapes & in labels",
    "loads more on scroll",
    "restores draft from localStorage",
    "handles 'quotes' in names",
];

const RUST_BINARIES: &[&str] = &["acme-e2e::e2e", "acme-server::api"];
const RUST_MODULES: &[&str] = &[
    "checkout",
    "sync",
    "api::orders",
    "api::users",
    "search",
    "billing",
    "fs",
    "auth",
    "uploads",
];
const RUST_FNS: &[&str] = &[
    "pays_with_saved_card",
    "replays_after_reconnect",
    "create_is_idempotent",
    "paginates_results",
    "handles_unicode_names",
    "survives_restart",
    "rejects_expired_session",
    "uploads_large_file",
    "streams_events",
    "rate_limits_burst",
    "resumes_partial_download",
    "watches_config_dir",
];

struct Unique(HashSet<(String, String)>);

impl Unique {
    fn insert(&mut self, class: &str, name: &str) -> bool {
        self.0.insert((class.to_string(), name.to_string()))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `n` tests for a job writing `dialect`, in report order.
pub fn generate(dialect: Dialect, n: usize, rng: &mut Rng) -> Vec<GenTest> {
    let mut out = Vec::with_capacity(n);
    let mut seen = Unique(HashSet::new());
    match dialect {
        Dialect::Surefire => java(n, rng, &mut seen, &mut out),
        Dialect::Compact => compact(n, &mut out),
        Dialect::Pytest => python(n, rng, &mut seen, &mut out),
        Dialect::Gotestsum => go(n, rng, &mut seen, &mut out),
        Dialect::Jest => jest(n, rng, &mut seen, &mut out),
        Dialect::Nextest => rust(n, rng, &mut seen, &mut out),
    }
    out.truncate(n);
    out
}

fn java(n: usize, rng: &mut Rng, seen: &mut Unique, out: &mut Vec<GenTest>) {
    let mut attempt = 0;
    while out.len() < n {
        attempt += 1;
        let module = rng.pick(JAVA_MODULES);
        let noun = rng.pick(JAVA_NOUNS);
        let suffix = if rng.chance(0.25) { "IT" } else { "Test" };
        let simple = format!("{noun}{suffix}");
        let class = format!("com.acme.{module}.{simple}");
        if !seen.insert(&class, "") {
            if attempt > 10_000 {
                break;
            }
            continue;
        }
        let per_class = rng.range(3, 12) as usize;
        let mut made = 0;
        let mut tries = 0;
        while made < per_class && out.len() < n && tries < 200 {
            tries += 1;
            let method = format!(
                "{}{}{}",
                rng.pick(JAVA_VERBS),
                rng.pick(JAVA_OBJECTS),
                rng.pick(JAVA_QUALIFIERS)
            );
            let params = rng.chance(0.12);
            let names: Vec<String> = if params {
                let sig = rng.pick(JAVA_PARAMS);
                let k = rng.range(2, 4);
                (1..=k).map(|i| format!("{method}{sig}[{i}]")).collect()
            } else {
                vec![method.clone()]
            };
            if names
                .iter()
                .any(|nm| seen.0.contains(&(class.clone(), nm.clone())))
            {
                continue;
            }
            for name in names {
                if out.len() >= n {
                    break;
                }
                seen.insert(&class, &name);
                out.push(GenTest {
                    classname: class.clone(),
                    name,
                    file: None,
                    suite: class.clone(),
                    parent: None,
                    src: format!("{simple}.java"),
                    func: method.clone(),
                });
                made += 1;
            }
        }
    }
}

fn compact(n: usize, out: &mut Vec<GenTest>) {
    for i in 0..n {
        let class = format!("com.acme.bench.m{:02}.Service{:03}Test", i / 100, i / 10);
        let method = format!("handlesCase{i:04}");
        out.push(GenTest {
            classname: class.clone(),
            name: method.clone(),
            file: None,
            suite: class,
            parent: None,
            src: format!("Service{:03}Test.java", i / 10),
            func: method,
        });
    }
}

fn python(n: usize, rng: &mut Rng, seen: &mut Unique, out: &mut Vec<GenTest>) {
    let mut guard = 0;
    while out.len() < n && guard < 10_000 {
        guard += 1;
        let area = rng.pick(PY_AREAS);
        let file = format!("tests/integration/test_{area}.py");
        let module = format!("tests.integration.test_{area}");
        let class = if rng.chance(0.3) {
            format!("{module}.Test{}Api", capitalise(area))
        } else {
            module
        };
        if !seen.insert(&class, "") {
            continue;
        }
        let per = rng.range(3, 9) as usize;
        let mut made = 0;
        let mut tries = 0;
        while made < per && out.len() < n && tries < 100 {
            tries += 1;
            let func = format!("test_{}_{}", rng.pick(PY_VERBS), rng.pick(PY_OBJECTS));
            let names: Vec<String> = if rng.chance(0.3) {
                let k = rng.range(2, 4) as usize;
                let start = rng.below(PY_PARAMS.len());
                (0..k)
                    .map(|i| format!("{func}{}", PY_PARAMS[(start + i) % PY_PARAMS.len()]))
                    .collect()
            } else {
                vec![func.clone()]
            };
            if names
                .iter()
                .any(|nm| seen.0.contains(&(class.clone(), nm.clone())))
            {
                continue;
            }
            for name in names {
                if out.len() >= n {
                    break;
                }
                seen.insert(&class, &name);
                out.push(GenTest {
                    classname: class.clone(),
                    name,
                    file: Some(file.clone()),
                    suite: "pytest".into(),
                    parent: None,
                    src: file.clone(),
                    func: func.clone(),
                });
                made += 1;
            }
        }
    }
}

fn go(n: usize, rng: &mut Rng, seen: &mut Unique, out: &mut Vec<GenTest>) {
    let mut guard = 0;
    while out.len() < n && guard < 10_000 {
        guard += 1;
        let pkg_path = rng.pick(GO_PACKAGES);
        let pkg = format!("github.com/acme/svc/{pkg_path}");
        let short = pkg_path.rsplit('/').next().unwrap_or(pkg_path);
        let src = format!("{short}_test.go");
        let per_pkg = rng.range(2, 9);
        let mut tries = 0;
        let mut made = 0;
        while made < per_pkg && out.len() < n && tries < 100 {
            tries += 1;
            let test = format!("Test{}{}", rng.pick(GO_THINGS), rng.pick(GO_VERBS));
            if !seen.insert(&pkg, &test) {
                continue;
            }
            made += 1;
            let room = n - out.len();
            let subs = if room >= 3 && rng.chance(0.3) {
                (rng.range(2, 4) as usize).min(room - 1)
            } else {
                0
            };
            let first = out.len();
            let start = rng.below(GO_SUBTESTS.len());
            for i in 0..subs {
                let name = format!("{test}/{}", GO_SUBTESTS[(start + i) % GO_SUBTESTS.len()]);
                seen.insert(&pkg, &name);
                out.push(GenTest {
                    classname: pkg.clone(),
                    name,
                    file: None,
                    suite: pkg.clone(),
                    parent: None,
                    src: src.clone(),
                    func: test.clone(),
                });
            }
            // Subtests finish before their parent, so gotestsum lists them first.
            let parent = out.len();
            out.push(GenTest {
                classname: pkg.clone(),
                name: test.clone(),
                file: None,
                suite: pkg.clone(),
                parent: None,
                src: src.clone(),
                func: test,
            });
            for child in &mut out[first..parent] {
                child.parent = Some(parent);
            }
        }
    }
    // gotestsum writes one <testsuite> per package: keep each package's tests together.
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| out[a].suite.cmp(&out[b].suite));
    let mut new_index = vec![0; out.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut sorted: Vec<GenTest> = order.iter().map(|&i| out[i].clone()).collect();
    for t in &mut sorted {
        t.parent = t.parent.map(|p| new_index[p]);
    }
    *out = sorted;
}

fn jest(n: usize, rng: &mut Rng, seen: &mut Unique, out: &mut Vec<GenTest>) {
    let mut guard = 0;
    while out.len() < n && guard < 10_000 {
        guard += 1;
        let (describe, src) = *rng.pick(JEST_DESCRIBES);
        let mut title = rng.pick(JEST_TITLES).to_string();
        if rng.chance(0.3) {
            title = format!(
                "{title} ({})",
                rng.pick(&["mobile", "desktop", "rtl", "dark mode"])
            );
        }
        let full = format!("{describe} {title}");
        if !seen.insert(&full, &full) {
            continue;
        }
        out.push(GenTest {
            classname: full.clone(),
            name: full,
            file: None,
            suite: describe.to_string(),
            parent: None,
            src: src.to_string(),
            func: title,
        });
    }
    // jest-junit writes one <testsuite> per test file: keep each describe's tests together.
    out.sort_by(|a, b| a.suite.cmp(&b.suite));
}

fn rust(n: usize, rng: &mut Rng, seen: &mut Unique, out: &mut Vec<GenTest>) {
    let mut guard = 0;
    while out.len() < n && guard < 10_000 {
        guard += 1;
        let binary = if rng.chance(0.75) {
            RUST_BINARIES[0]
        } else {
            RUST_BINARIES[1]
        };
        let module = rng.pick(RUST_MODULES);
        let func = rng.pick(RUST_FNS);
        let name = format!("{module}::{func}");
        if !seen.insert(binary, &name) {
            continue;
        }
        let src = format!("tests/e2e/{}.rs", module.replace("::", "/"));
        out.push(GenTest {
            classname: binary.to_string(),
            name,
            file: None,
            suite: binary.to_string(),
            parent: None,
            src,
            func: func.to_string(),
        });
    }
    out.sort_by(|a, b| a.suite.cmp(&b.suite).then(a.name.cmp(&b.name)));
}

/// A failure message shape; `{…}` placeholders vary between failures.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The `type` attribute (exception class), where the dialect writes one.
    pub kind: &'static str,
    /// An unexpected exception (`<error>`) rather than an assertion (`<failure>`).
    pub error: bool,
    pub text: &'static str,
}

const fn t(kind: &'static str, error: bool, text: &'static str) -> Template {
    Template { kind, error, text }
}

const JAVA_FLAKY: &[Template] = &[
    t("java.util.concurrent.TimeoutException", true, "Timeout after {ms} ms waiting for 0x{hex}"),
    t("org.opentest4j.AssertionFailedError", false, "expected: <{n}> but was: <{n2}>"),
    t("java.net.ConnectException", true, "Connection refused: localhost/127.0.0.1:{port}"),
    t(
        "org.awaitility.core.ConditionTimeoutException",
        true,
        "Condition with alias 'ledger {hex8} settled' didn't complete within {sec} seconds because condition was not fulfilled.",
    ),
    t(
        "java.lang.IllegalStateException",
        true,
        "Lock /tmp/junit{pid}/{tmp}.lock is held by pool-{n}-thread-{n2}",
    ),
    t(
        "java.lang.AssertionError",
        false,
        "Expected event OrderPaid{id={uuid}} within {ms}ms but got 0 events",
    ),
    t(
        "org.springframework.dao.CannotAcquireLockException",
        true,
        "Deadlock found when trying to get lock; try restarting transaction (txid 0x{hex8})",
    ),
];
const JAVA_BROKEN: &[Template] = &[
    t(
        "org.opentest4j.AssertionFailedError",
        false,
        "expected: <200> but was: <500>",
    ),
    t(
        "org.opentest4j.AssertionFailedError",
        false,
        "expected: <{n}> but was: <{n2}>",
    ),
    t(
        "java.lang.NullPointerException",
        true,
        "Cannot invoke \"java.math.BigDecimal.scale()\" because \"amount\" is null",
    ),
    t(
        "java.lang.AssertionError",
        false,
        "Unexpected status REJECTED for order #{n}",
    ),
];
const JAVA_GROUP: Template = t(
    "org.apache.kafka.common.errors.TimeoutException",
    true,
    "Topic payments-{hex} not present in metadata after {ms} ms.",
);

const PY_FLAKY: &[Template] = &[
    t("AssertionError", false, "AssertionError: assert {n} == {n2}"),
    t(
        "requests.exceptions.ConnectionError",
        false,
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port={port}): Max retries exceeded with url: /api/v1/orders/{n}",
    ),
    t(
        "TimeoutError",
        false,
        "TimeoutError: timed out after {sec}s waiting for /tmp/pytest-of-runner/pytest-{n}/{func}0/server.sock",
    ),
    t(
        "psycopg2.errors.SerializationFailure",
        false,
        "psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update (xid {pid})",
    ),
    t(
        "AssertionError",
        false,
        "AssertionError: expected status 'settled' for refund {uuid}, got 'pending'",
    ),
];
const PY_BROKEN: &[Template] = &[
    t("AssertionError", false, "AssertionError: assert 422 == 201"),
    t("KeyError", false, "KeyError: 'currency'"),
    t(
        "TypeError",
        false,
        "TypeError: refund() got an unexpected keyword argument 'reason'",
    ),
];
const PY_GROUP: Template = t(
    "redis.exceptions.ConnectionError",
    true,
    "failed on setup with \"redis.exceptions.ConnectionError: Error 111 connecting to redis-{hex}:6379. Connection refused.\"",
);

const GO_FLAKY: &[Template] = &[
    t(
        "",
        false,
        "timed out after {ms}ms waiting for worker 0x{hex}",
    ),
    t("", false, "unexpected count: got {n}, want {n2}"),
    t(
        "",
        false,
        "dial tcp 127.0.0.1:{port}: connect: connection refused",
    ),
    t(
        "",
        false,
        "context deadline exceeded after {sec}s (request id {hex8})",
    ),
    t(
        "",
        false,
        "Eventually: condition not met after {ms}ms (last value {n})",
    ),
];
const GO_BROKEN: &[Template] = &[
    t("", false, "got status 500, want 200"),
    t("", false, "Decode() error = unexpected EOF, wantErr false"),
    t(
        "",
        false,
        "mismatch (-want +got):\n  \"total\": -{n}, +{n2}",
    ),
];

const JEST_FLAKY: &[Template] = &[
    t(
        "",
        false,
        "Error: expect(received).toBe(expected) // Object.is equality\n\nExpected: {n}\nReceived: {n2}",
    ),
    t(
        "",
        false,
        "TestingLibraryElementError: Unable to find an element with the text: Total: ${n}.{n2}. This could be because the text is broken up by multiple elements.",
    ),
    t("", false, "Error: connect ECONNREFUSED 127.0.0.1:{port}"),
    t(
        "",
        false,
        "thrown: \"Exceeded timeout of 5000 ms for a test.\nAdd a timeout value to this test to increase the timeout, if this is a long-running test. See https://jestjs.io/docs/api#testname-fn-timeout.\"",
    ),
    t(
        "",
        false,
        "Error: Timed out in waitFor after {ms}ms.\n\nIgnored nodes: comments, script, style\n<div id=\"root-{hex}\" />",
    ),
];
const JEST_BROKEN: &[Template] = &[
    t(
        "",
        false,
        "Error: expect(received).toEqual(expected) // deep equality\n\nExpected: \"$1,234.50\"\nReceived: \"$1234.5\"",
    ),
    t(
        "",
        false,
        "TypeError: Cannot read properties of undefined (reading 'total')",
    ),
];

const RUST_FLAKY: &[Template] = &[
    t(
        "test failure",
        false,
        "called `Result::unwrap()` on an `Err` value: Elapsed(())\ntimed out after {ms}ms waiting for 127.0.0.1:{port}",
    ),
    t(
        "test failure",
        false,
        "assertion `left == right` failed\n  left: {n}\n right: {n2}",
    ),
    t("test failure", false, "server exited early: signal 9 (pid {pid})"),
    t(
        "test failure",
        false,
        "event stream stalled: no message for {ms}ms (cursor 0x{hex8})",
    ),
];
const RUST_BROKEN: &[Template] = &[
    t(
        "test failure",
        false,
        "assertion `left == right` failed\n  left: 404\n right: 200",
    ),
    t(
        "test failure",
        false,
        "called `Option::unwrap()` on a `None` value",
    ),
];
const RUST_PLATFORM: &[Template] = &[
    t(
        "test failure",
        false,
        "path mismatch: \"/private/var/folders/{tmp}/T/.tmp{hex}\" != \"/var/folders/{tmp}/T/.tmp{hex}\"",
    ),
    t(
        "test failure",
        false,
        "Too many open files (os error 24) while opening fixture {n}",
    ),
];

/// Failure message shapes a dialect's tests use when flaky.
pub fn flaky_templates(d: Dialect) -> &'static [Template] {
    match d {
        Dialect::Surefire | Dialect::Compact => JAVA_FLAKY,
        Dialect::Pytest => PY_FLAKY,
        Dialect::Gotestsum => GO_FLAKY,
        Dialect::Jest => JEST_FLAKY,
        Dialect::Nextest => RUST_FLAKY,
    }
}

/// Failure message shapes of real breakages.
pub fn broken_templates(d: Dialect) -> &'static [Template] {
    match d {
        Dialect::Surefire | Dialect::Compact => JAVA_BROKEN,
        Dialect::Pytest => PY_BROKEN,
        Dialect::Gotestsum => GO_BROKEN,
        Dialect::Jest => JEST_BROKEN,
        Dialect::Nextest => RUST_BROKEN,
    }
}

/// Failure message shapes of a platform-specific breakage.
pub fn platform_templates(d: Dialect) -> &'static [Template] {
    match d {
        Dialect::Nextest => RUST_PLATFORM,
        other => broken_templates(other),
    }
}

/// The shared cause of a co-failure group.
pub fn group_template(d: Dialect) -> Template {
    match d {
        Dialect::Pytest => PY_GROUP,
        Dialect::Gotestsum => t("", false, "dial tcp 10.0.3.{n}:5432: i/o timeout"),
        Dialect::Jest => t("", false, "Error: connect ECONNREFUSED 127.0.0.1:{port}"),
        Dialect::Nextest => t(
            "test failure",
            false,
            "called `Result::unwrap()` on an `Err` value: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" } (port {port})",
        ),
        Dialect::Surefire | Dialect::Compact => JAVA_GROUP,
    }
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Fill a template's placeholders from a hash (`{func}` from the test).
pub fn render(text: &str, h: u64, func: &str) -> String {
    let mut out = String::with_capacity(text.len() + 24);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        if name.contains('{') {
            // `{id={uuid}}`: the outer brace is text.
            out.push('{');
            rest = after;
            continue;
        }
        // The same placeholder twice in one message gets the same value.
        let slot = name
            .bytes()
            .fold(0x1234_5678u64, |acc, b| mix(acc ^ u64::from(b)));
        let v = mix(h ^ slot);
        let known = match name {
            "ms" => Some(format!("{}", 1000 + v % 29_000)),
            "hex" => Some(format!("{:06x}", v & 0xFF_FFFF)),
            "hex8" => Some(format!("{:08x}", v & 0xFFFF_FFFF)),
            "port" => Some(format!("{}", 32_768 + v % 28_000)),
            "n" | "n2" => Some(format!("{}", 1 + v % 500)),
            "sec" => Some(format!("{}.{}", 2 + v % 58, (v >> 20) % 10)),
            "pid" => Some(format!("{}", 1000 + v % 98_000)),
            "uuid" => Some(format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                v >> 32,
                (v >> 16) & 0xFFFF,
                v & 0xFFF,
                ((mix(v) >> 48) & 0x3FFF) | 0x8000,
                mix(v ^ 1) & 0xFFFF_FFFF_FFFF
            )),
            "tmp" => Some(
                (0..6)
                    .map(|i| ALNUM[((v >> (i * 6)) % ALNUM.len() as u64) as usize] as char)
                    .collect(),
            ),
            "func" => Some(func.to_string()),
            _ => None,
        };
        match known {
            Some(s) => out.push_str(&s),
            None => {
                // Not a placeholder (e.g. `{id}` in a Go route): kept as written.
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::Purpose;

    #[test]
    fn generators_give_unique_names_and_exact_counts() {
        for d in [
            Dialect::Surefire,
            Dialect::Pytest,
            Dialect::Gotestsum,
            Dialect::Jest,
            Dialect::Nextest,
            Dialect::Compact,
        ] {
            for n in [1, 7, 60, 150] {
                let mut rng = Rng::new(3, Purpose::World, n as u64);
                let tests = generate(d, n, &mut rng);
                assert_eq!(tests.len(), n, "{d:?} {n}");
                let set: HashSet<_> = tests.iter().map(|t| (&t.classname, &t.name)).collect();
                assert_eq!(set.len(), n, "{d:?} {n}");
                // Each suite's tests are together (one <testsuite> or file per suite).
                let mut done: HashSet<&str> = HashSet::new();
                for (i, t) in tests.iter().enumerate() {
                    if i > 0 && tests[i - 1].suite != t.suite {
                        assert!(done.insert(&tests[i - 1].suite), "{d:?}: {} split", t.suite);
                    }
                    assert!(!done.contains(t.suite.as_str()), "{d:?}: {} split", t.suite);
                }
                for (i, t) in tests.iter().enumerate() {
                    if let Some(p) = t.parent {
                        assert!(p > i && tests[p].parent.is_none());
                        assert!(t.name.starts_with(&format!("{}/", tests[p].name)));
                    }
                }
            }
        }
    }

    #[test]
    fn render_varies_numbers_but_not_shape() {
        let a = render("Timeout after {ms} ms waiting for 0x{hex} at {id}", 1, "f");
        let b = render("Timeout after {ms} ms waiting for 0x{hex} at {id}", 2, "f");
        assert_ne!(a, b);
        assert!(
            a.starts_with("Timeout after ") && a.ends_with(" at {id}"),
            "{a}"
        );
        let e = render("OrderPaid{id={uuid}} {tmp}/{tmp}", 3, "f");
        assert!(e.starts_with("OrderPaid{id=") && e.contains("} "), "{e}");
        assert!(!e.contains("{uuid}"), "{e}");
        let (x, y) = e.rsplit_once(' ').unwrap().1.split_once('/').unwrap();
        assert_eq!(x, y);
    }
}
