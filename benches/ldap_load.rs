//! Phones searching a running `ucm serve`'s LDAP directory as their users type: CLIENTS
//! clients (default 50), each on its own connection, bound once, type a name (or a number)
//! a letter at a time, sending the search a phone sends for what is typed so far after each
//! keystroke (Yealink's default filters: `(|(cn=ann*)(sn=ann*))`, and
//! `(|(telephoneNumber=0475*)(mobile=0475*))` for digits), asking for at most 50 entries
//! and the attributes a phone shows, with PAUSE_MS milliseconds between keystrokes (default
//! 100: a fast typist; 0: every client sends its next search as soon as the last is answered,
//! a stress far beyond 50 people). For SECONDS seconds (default 20), after 2 s of warm-up.
//! Prints searches, entries, errors (anything but success or sizeLimitExceeded, or no
//! answer), p50, p99 and max latency.
//!
//! With UCM_BENCH_ABUSIVE=N, N more connections (from the same address) send unindexed
//! searches (`(|(cn=*zzqx*)(telephoneNumber=*9999999*))`, each reading the whole table) back
//! to back for the whole window: an abusive or misconfigured client; the line says how many
//! were answered and how many told busy.
//!
//! Run by `benches/ldap.sh`, which builds the directory and starts the service:
//!   cargo bench --bench ldap_load -- HOST:PORT BIND_DN PASSWORD BASE [CLIENTS] [SECONDS] [PAUSE_MS]

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode,
    LdapSearchRequest, LdapSearchScope, LdapSubstringFilter,
};
use tokio_util::codec::Framed;

/// What people type: names of the generated directory (benches/ldap.sh), two with letters
/// beyond ASCII (read in each case the indexes can hold them), and numbers.
const TYPED: [&str; 16] = [
    "anna", "peeters", "jan", "janssens", "marie", "de smet", "dubois", "lucas", "wouters",
    "olivia", "pieter", "mertens", "müller", "inès", "0475 12", "+32 478",
];

/// The search a phone sends for `typed`.
fn filter(typed: &str) -> LdapFilter {
    let prefix = |attribute: &str| {
        LdapFilter::Substring(
            attribute.to_owned(),
            LdapSubstringFilter {
                initial: Some(typed.to_owned()),
                any: Vec::new(),
                final_: None,
            },
        )
    };
    if typed.starts_with(|c: char| c.is_ascii_digit() || c == '+') {
        LdapFilter::Or(vec![prefix("telephoneNumber"), prefix("mobile")])
    } else {
        LdapFilter::Or(vec![prefix("cn"), prefix("sn")])
    }
}

struct Tally {
    micros: Vec<u64>,
    entries: u64,
    errors: u64,
}

/// Where the phones connect and how they bind.
#[derive(Clone)]
struct Directory {
    address: String,
    bind_dn: String,
    password: String,
    base: String,
}

/// When a client counts its searches, when it stops, and its pause between keystrokes.
#[derive(Clone, Copy)]
struct Window {
    count_from: Instant,
    until: Instant,
    pause: Duration,
}

/// A connection to `address` bound as `bind_dn`; None when it cannot connect or send.
async fn bound(
    address: &str,
    bind_dn: String,
    password: String,
) -> Option<Framed<tokio::net::TcpStream, LdapCodec>> {
    let stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let _ = stream.set_nodelay(true);
    let mut connection = Framed::new(stream, LdapCodec::default());
    let bind = LdapMsg {
        msgid: 1,
        op: LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: bind_dn,
            cred: LdapBindCred::Simple(password),
        }),
        ctrl: Vec::new(),
    };
    connection.send(bind).await.ok()?;
    match connection.next().await {
        Some(Ok(LdapMsg {
            op: LdapOp::BindResponse(r),
            ..
        })) if r.res.code == LdapResultCode::Success => Some(connection),
        other => panic!("the bind failed: {other:?}"),
    }
}

/// What an abusive client got: unindexed searches answered, and told busy.
#[derive(Default)]
struct Abuse {
    answered: u64,
    busy: u64,
}

/// A client sending unindexed searches (a substring in the middle of names and numbers: no
/// index answers it, each reads the whole table) back to back until `until`.
async fn abusive(directory: Directory, until: Instant) -> Abuse {
    let mut abuse = Abuse::default();
    let Some(mut connection) =
        bound(&directory.address, directory.bind_dn, directory.password).await
    else {
        return abuse;
    };
    let any = |attribute: &str, middle: &str| {
        LdapFilter::Substring(
            attribute.to_owned(),
            LdapSubstringFilter {
                initial: None,
                any: vec![middle.to_owned()],
                final_: None,
            },
        )
    };
    let mut msgid = 1;
    while Instant::now() < until {
        msgid += 1;
        let request = LdapMsg {
            msgid,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: directory.base.clone(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 50,
                timelimit: 10,
                typesonly: false,
                filter: LdapFilter::Or(vec![any("cn", "zzqx"), any("telephoneNumber", "9999999")]),
                attrs: vec!["cn".to_owned()],
            }),
            ctrl: Vec::new(),
        };
        if connection.send(request).await.is_err() {
            return abuse;
        }
        loop {
            match connection.next().await {
                Some(Ok(LdapMsg {
                    op: LdapOp::SearchResultDone(done),
                    ..
                })) => {
                    if done.code == LdapResultCode::Busy {
                        abuse.busy += 1;
                        // A client told busy comes back a little later, as ldapsearch in a
                        // shell loop would.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        abuse.answered += 1;
                    }
                    break;
                }
                Some(Ok(_)) => {}
                _ => return abuse,
            }
        }
    }
    abuse
}

async fn client(directory: Directory, start: usize, window: Window) -> Tally {
    let Directory {
        address,
        bind_dn,
        password,
        base,
    } = directory;
    let Window {
        count_from,
        until,
        pause,
    } = window;
    let mut tally = Tally {
        micros: Vec::new(),
        entries: 0,
        errors: 0,
    };
    let Some(mut connection) = bound(&address, bind_dn, password).await else {
        tally.errors += 1;
        return tally;
    };
    let mut msgid = 1;
    let mut word = start;
    while Instant::now() < until {
        let typed_word = TYPED[word % TYPED.len()];
        word += 1;
        for end in 1..=typed_word.len() {
            if Instant::now() >= until {
                break;
            }
            if !typed_word.is_char_boundary(end) || typed_word[..end].ends_with(' ') {
                continue;
            }
            msgid += 1;
            let request = LdapMsg {
                msgid,
                op: LdapOp::SearchRequest(LdapSearchRequest {
                    base: base.clone(),
                    scope: LdapSearchScope::Subtree,
                    aliases: LdapDerefAliases::Never,
                    sizelimit: 50,
                    timelimit: 10,
                    typesonly: false,
                    filter: filter(&typed_word[..end]),
                    attrs: ["cn", "telephoneNumber", "mobile", "homePhone"]
                        .map(String::from)
                        .to_vec(),
                }),
                ctrl: Vec::new(),
            };
            let started = Instant::now();
            if connection.send(request).await.is_err() {
                tally.errors += 1;
                return tally;
            }
            let mut entries = 0;
            let ok = loop {
                match connection.next().await {
                    Some(Ok(LdapMsg {
                        op: LdapOp::SearchResultEntry(_),
                        ..
                    })) => entries += 1,
                    Some(Ok(LdapMsg {
                        op: LdapOp::SearchResultDone(done),
                        ..
                    })) => {
                        break matches!(
                            done.code,
                            LdapResultCode::Success | LdapResultCode::SizeLimitExceeded
                        );
                    }
                    _ => break false,
                }
            };
            if started >= count_from {
                tally.micros.push(started.elapsed().as_micros() as u64);
                tally.entries += entries;
                if !ok {
                    tally.errors += 1;
                }
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }
    tally
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [address, bind_dn, password, base, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: cargo bench --bench ldap_load -- HOST:PORT BIND_DN PASSWORD BASE [CLIENTS] [SECONDS] [PAUSE_MS]"
        );
        std::process::exit(2);
    };
    let clients: usize = rest.first().map_or(50, |c| c.parse().expect("CLIENTS"));
    let seconds: u64 = rest.get(1).map_or(20, |s| s.parse().expect("SECONDS"));
    let pause = Duration::from_millis(rest.get(2).map_or(100, |p| p.parse().expect("PAUSE_MS")));
    let abusive_clients: usize = std::env::var("UCM_BENCH_ABUSIVE").map_or(0, |n| {
        n.parse()
            .expect("UCM_BENCH_ABUSIVE: a number of connections")
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (tallies, abuse) = runtime.block_on(async {
        let count_from = Instant::now() + Duration::from_secs(2);
        let until = count_from + Duration::from_secs(seconds);
        let directory = Directory {
            address: address.clone(),
            bind_dn: bind_dn.clone(),
            password: password.clone(),
            base: base.clone(),
        };
        let window = Window {
            count_from,
            until,
            pause,
        };
        let abusers: Vec<_> = (0..abusive_clients)
            .map(|_| tokio::spawn(abusive(directory.clone(), until)))
            .collect();
        let tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(client(directory.clone(), i, window)))
            .collect();
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.unwrap());
        }
        let mut abuse = Abuse::default();
        for task in abusers {
            let one = task.await.unwrap();
            abuse.answered += one.answered;
            abuse.busy += one.busy;
        }
        (tallies, abuse)
    });
    let mut micros: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.micros.iter().copied())
        .collect();
    let entries: u64 = tallies.iter().map(|t| t.entries).sum();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    micros.sort_unstable();
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 * q) as usize).min(micros.len().max(1) - 1))
            .map_or(0.0, |&m| m as f64 / 1000.0)
    };
    println!(
        "== {clients} clients typing for {seconds} s, {} ms between keystrokes{}",
        pause.as_millis(),
        if abusive_clients > 0 {
            format!(
                "; one address sending unindexed searches on {abusive_clients} connections \
                 ({} answered, {} told busy)",
                abuse.answered, abuse.busy
            )
        } else {
            String::new()
        }
    );
    println!(
        "  searches {} ({:.0}/s)  entries {} ({:.1} a search)  errors {errors}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        micros.len(),
        micros.len() as f64 / seconds as f64,
        entries,
        entries as f64 / micros.len().max(1) as f64,
        at(0.50),
        at(0.99),
        micros.last().map_or(0.0, |&m| m as f64 / 1000.0),
    );
    println!(
        "  target: p99 under 20 ms and no error: {}",
        if at(0.99) < 20.0 && errors == 0 {
            "ok"
        } else {
            "MISSED"
        }
    );
}
