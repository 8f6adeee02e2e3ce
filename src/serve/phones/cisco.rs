//! The Cisco feed's pages (`CiscoIPPhoneDirectory`, 32 lines each): a page of the whole
//! feed, read in the feed's order, or of a search, read from the contact search's indexes.

use super::feed_rows::{FeedRow, entry_of, sort_sql};
use super::feeds_config::PhonebookConfig;
use crate::load::{Store, on_pool};
use crate::phonebook::{CISCO_PAGE_ENTRIES, CiscoLine, CiscoPage, cisco_lines, write_cisco_page};

/// Contacts a Cisco search reads at most (its pages included): the search's limit.
const CISCO_SEARCH_CONTACTS: usize = 2048;

/// A Cisco page: the lines of the feed, page `page` (from 1) of 32, with Prev/Next soft keys to the
/// neighbouring pages; with `q`, the lines of the contacts the contact search finds for it
/// (first name, last name or e-mail address starting with it, or a number starting with its
/// digits), read from the indexes ([`cisco_search`]); without, the whole feed in its order,
/// of which only the page is kept.
pub(super) async fn cisco(
    store: &Store,
    config: &PhonebookConfig,
    page: Option<usize>,
    q: Option<&str>,
    base: &str,
) -> Result<Vec<u8>, String> {
    let page = page.unwrap_or(1).max(1);
    let first = (page - 1) * CISCO_PAGE_ENTRIES;
    let (lines, total) = match q.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => cisco_search(store, config, q, first).await?,
        None => cisco_browse(store, config, first).await?,
    };
    let pages = total.div_ceil(CISCO_PAGE_ENTRIES).max(1);
    let link = |p: usize| {
        let mut url = format!("{base}?page={p}");
        if let Some(q) = q {
            url.push_str("&q=");
            url.push_str(&crate::serve::urls::encoded(q));
        }
        url
    };
    let previous = (page > 1).then(|| link(page - 1));
    let next = (page < pages).then(|| link(page + 1));
    let search = format!("{base}/search");
    let prompt = format!("Page {page} of {pages}");
    let mut out = Vec::new();
    write_cisco_page(
        &mut out,
        &CiscoPage {
            title: &config.title,
            prompt: &prompt,
            lines: &lines,
            previous_url: previous.as_deref(),
            next_url: next.as_deref(),
            search_url: Some(&search),
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The page of lines from line `first` of the whole feed, and how many lines it has.
async fn cisco_browse(
    store: &Store,
    config: &PhonebookConfig,
    first: usize,
) -> Result<(Vec<CiscoLine>, usize), String> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    on_pool!(store, |pool| {
        use futures_util::TryStreamExt as _;
        let mut rows = sqlx::query(sort_sql(config.sort)).fetch(pool);
        while let Some(row) = rows.try_next().await.map_err(|e| e.to_string())? {
            let Some(entry) = entry_of(&row, config).map_err(|e| e.to_string())? else {
                continue;
            };
            for line in cisco_lines(&entry, config.name_style) {
                if total >= first && lines.len() < CISCO_PAGE_ENTRIES {
                    lines.push(line);
                }
                total += 1;
            }
        }
        Ok::<(), String>(())
    })?;
    Ok((lines, total))
}

/// The page of lines from line `first` of the contacts the contact search finds for `q`
/// (at most [`CISCO_SEARCH_CONTACTS`], in its order: by the matching name, e-mail address
/// or number), and how many lines they have. Reads index ranges, never the table.
async fn cisco_search(
    store: &Store,
    config: &PhonebookConfig,
    q: &str,
    first: usize,
) -> Result<(Vec<CiscoLine>, usize), String> {
    let found = crate::directory::search(store, q, CISCO_SEARCH_CONTACTS as i64)
        .await
        .map_err(|e| e.to_string())?;
    let all: Vec<CiscoLine> = found
        .into_iter()
        .filter_map(|contact| FeedRow::of_contact(contact).entry(config))
        .flat_map(|entry| cisco_lines(&entry, config.name_style))
        .collect();
    let total = all.len();
    let lines = all
        .into_iter()
        .skip(first)
        .take(CISCO_PAGE_ENTRIES)
        .collect();
    Ok((lines, total))
}
