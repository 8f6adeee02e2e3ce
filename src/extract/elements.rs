//! Elements against the compiled schema: start tags and their names and attributes (with
//! namespaces), each element admitted by its parent's content model, required children, and
//! the end of a record, which yields the contact.

use quick_xml::events::BytesStart;

use super::reader::{ContactReader, ExternalContact, Frame, MAX_DEPTH, OpenRecord, State};
use crate::extract::namespaces;
use crate::extract::position::Position;
use crate::extract::schema::{Content, ElementId, Group, Schema};
use crate::extract::syntax;

impl<'s, 'd> ContactReader<'s, 'd> {
    /// Checks a start tag before the schema sees it: its name, its attributes (XML 1.0) and
    /// its namespaces (Namespaces in XML 1.0), declaring what it binds for its content. Any
    /// of these is a well-formedness error that stops reading, reported before a schema
    /// error on the same tag (as libxml2 does); then attributes the schema does not allow
    /// are schema errors. Returns false after a well-formedness error.
    pub(super) fn check_start_tag(&mut self, e: &BytesStart<'_>, at: Position) -> bool {
        self.xsi_type = None;
        let name = e.name();
        let name = name.as_ref();
        let raw = e.attributes_raw();
        let plain_name = !name.contains(&b':');
        if plain_name && raw.iter().all(|b| b.is_ascii_whitespace()) {
            if !syntax::is_name(name, self.encoding) {
                let n = String::from_utf8_lossy(name).into_owned();
                self.fatal(
                    at,
                    format!("not well-formed XML: \"{n}\" is not an XML name"),
                );
                return false;
            }
            return true;
        }
        match self.check_names(name, raw) {
            Ok(not_allowed) => {
                for message in not_allowed {
                    self.error_at(at, message);
                }
                true
            }
            Err(why) => {
                let element = String::from_utf8_lossy(name).into_owned();
                self.fatal(at, format!("not well-formed XML in <{element}>: {why}"));
                false
            }
        }
    }

    /// The well-formedness and namespace checks of [`Self::check_start_tag`] for a tag with
    /// attributes or a prefix; returns the schema errors (attributes not allowed).
    pub(super) fn check_names(&mut self, name: &[u8], raw: &[u8]) -> Result<Vec<String>, String> {
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if !syntax::is_name(name, self.encoding) {
            return Err(format!("\"{}\" is not an XML name", shown(name)));
        }
        let depth = self.stack.len();
        let mut attributes = Vec::new();
        for attr in syntax::attributes(raw, self.encoding)? {
            let value = syntax::attribute_value(attr.value, self.encoding)
                .map_err(|why| format!("attribute {}: {why}", shown(attr.name)))?;
            if attr.name == b"xmlns" {
                self.namespaces.declare(b"", value.as_bytes(), depth)?;
            } else if let Some(prefix) = attr.name.strip_prefix(b"xmlns:") {
                namespaces::split_qname(attr.name)?;
                self.namespaces.declare(prefix, value.as_bytes(), depth)?;
            } else {
                attributes.push((attr.name, value));
            }
        }
        let (prefix, _) = namespaces::split_qname(name)?;
        if let Some(prefix) = prefix
            && (prefix == b"xmlns" || self.namespaces.resolve(prefix).is_none())
        {
            return Err(format!("the prefix {} is not declared", shown(prefix)));
        }
        let mut expanded: Vec<(&[u8], &[u8])> = Vec::new();
        let mut not_allowed = Vec::new();
        for (attr, value) in attributes {
            let (prefix, local) = namespaces::split_qname(attr)?;
            let ns = match prefix {
                None => &b""[..],
                Some(p) => self
                    .namespaces
                    .resolve(p)
                    .filter(|_| p != b"xmlns")
                    .ok_or_else(|| {
                        format!(
                            "the prefix {} of attribute {} is not declared",
                            shown(p),
                            shown(attr)
                        )
                    })?,
            };
            if !ns.is_empty() && expanded.contains(&(ns, local)) {
                return Err(format!(
                    "attribute {} appears twice in namespace {}",
                    shown(local),
                    shown(ns)
                ));
            }
            expanded.push((ns, local));
            if ns == namespaces::XSI_NS && local == b"type" {
                // Checked against the element's declaration once it is known.
                // As libxml2: no whitespace around the name.
                let (type_prefix, type_local) = namespaces::split_qname(value.as_bytes())
                    .map_err(|why| format!("xsi:type=\"{value}\": {why}"))?;
                let type_ns = self.namespaces.resolve(type_prefix.unwrap_or_default());
                match type_ns {
                    Some(type_ns) => {
                        let resolved = (type_ns.to_vec(), type_local.to_vec(), value.to_string());
                        self.xsi_type = Some(resolved);
                    }
                    None => not_allowed.push(format!(
                        "xsi:type=\"{value}\" on <{}>: its prefix is not declared",
                        shown(name)
                    )),
                }
            } else if !(ns == namespaces::XSI_NS
                && matches!(local, b"schemaLocation" | b"noNamespaceSchemaLocation"))
            {
                not_allowed.push(format!(
                    "attribute {} is not allowed on <{}>: the schema declares no attributes",
                    shown(attr),
                    shown(name)
                ));
            }
        }
        if let Some(ns) = self.namespaces.resolve(b"").filter(|ns| !ns.is_empty())
            && prefix.is_none()
        {
            not_allowed.insert(
                0,
                format!(
                    "<{}> is in namespace \"{}\"; the schema's elements have no namespace",
                    shown(name),
                    shown(ns)
                ),
            );
        }
        Ok(not_allowed)
    }

    pub(super) fn start_element(&mut self, e: &BytesStart<'_>, at: Position) {
        if self.stack.len() >= MAX_DEPTH {
            self.fatal(
                at,
                format!("elements are nested more than {MAX_DEPTH} levels deep"),
            );
            return;
        }
        if !self.check_start_tag(e, at) {
            return;
        }
        let name = e.name();
        let name = name.as_ref();
        let Some(parent) = self.stack.last_mut() else {
            if self.root_done {
                let n = String::from_utf8_lossy(name).into_owned();
                self.fatal(
                    at,
                    format!("a second root element <{n}>: a document has exactly one root"),
                );
                return;
            }
            match self.schema.root_named(name) {
                Some(decl) => self.push(decl, at),
                None => {
                    let n = String::from_utf8_lossy(name).into_owned();
                    let expected: Vec<_> = self
                        .schema
                        .roots
                        .iter()
                        .map(|&r| format!("<{}>", self.schema.decl(r).name))
                        .collect();
                    let schema = self.schema.path.display().to_string();
                    self.fatal(
                        at,
                        format!(
                            "root element <{n}> is not declared in {schema}; expected {}",
                            expected.join(" or ")
                        ),
                    );
                }
            }
            return;
        };
        let (parent_decl, state) = match parent {
            Frame::Skip => {
                self.stack.push(Frame::Skip);
                return;
            }
            Frame::Element { decl, state, .. } => (*decl, state),
        };
        let parent_name = &self.schema.decl(parent_decl).name;
        let verdict: Result<ElementId, String> =
            match (state, &self.schema.decl(parent_decl).content) {
                (State::Simple, _) => Err(format!(
                    "element <{}> is not allowed inside <{parent_name}>: it holds text only",
                    String::from_utf8_lossy(name)
                )),
                (state, Content::Complex(group)) => {
                    match self.schema.child_position(parent_decl, name) {
                        None => Err(format!(
                            "element <{}> is not allowed in <{parent_name}>; allowed: {}",
                            String::from_utf8_lossy(name),
                            self.schema.child_names(parent_decl)
                        )),
                        Some(p) => admit(self.schema, group, state, p)
                            .map(|()| group.children()[p])
                            .map_err(|why| {
                                format!(
                                    "element <{}> {why} in <{parent_name}>",
                                    String::from_utf8_lossy(name)
                                )
                            }),
                    }
                }
                (_, Content::Simple(_)) => unreachable!("simple content has State::Simple"),
            };
        match verdict {
            Ok(decl) => self.push(decl, at),
            Err(message) => {
                self.error_at(at, message);
                self.stack.push(Frame::Skip);
            }
        }
    }

    pub(super) fn push(&mut self, decl: ElementId, at: Position) {
        let xsi_type = self.xsi_type.take();
        let state = match &self.schema.decl(decl).content {
            Content::Simple(_) => {
                self.text.clear();
                State::Simple
            }
            Content::Complex(group) => State::start_of(group),
        };
        if decl == self.layout.record {
            self.record = Some(OpenRecord {
                errors_before: self.errors.len(),
                contact: ExternalContact::empty(at.line),
            });
        }
        if let Some((ns, local, written)) = xsi_type {
            // Only the declared type itself: the schema derives no types from it.
            let declared = self.schema.decl(decl).type_name.as_ref();
            if declared.is_none_or(|(d_ns, d_local)| {
                d_ns.as_bytes() != ns.as_slice() || d_local.as_bytes() != local.as_slice()
            }) {
                let element = &self.schema.decl(decl).name;
                let allowed = match declared {
                    Some((_, d_local)) => format!("only its declared type {d_local} may be named"),
                    None => "its type is anonymous and cannot be named".to_owned(),
                };
                let message =
                    format!("xsi:type=\"{written}\" is not allowed on <{element}>: {allowed}");
                self.error_at(at, message);
            }
        }
        self.stack.push(Frame::Element {
            decl,
            start: at,
            state,
        });
    }

    pub(super) fn end_element(&mut self) -> Option<ExternalContact> {
        if self.finished {
            // A fatal error stopped reading; an empty element whose start failed has no frame.
            return None;
        }
        let frame = self.stack.pop()?;
        self.namespaces.leave(self.stack.len());
        if self.stack.is_empty() {
            self.root_done = true;
        }
        let Frame::Element { decl, start, state } = frame else {
            return None;
        };
        let d = self.schema.decl(decl);
        match (&d.content, state) {
            (Content::Simple(st), State::Simple) => {
                let text = &self.text;
                if !st.admits(text) {
                    let name = d.name.clone();
                    let chars = text.chars().count();
                    let rule = match st.max_length {
                        Some(max) if chars > max => format!("at most {max}"),
                        _ => format!("at least {}", st.min_length.unwrap_or_default()),
                    };
                    self.error_at(
                        start,
                        format!("value of <{name}> is {chars} characters long; {rule} allowed"),
                    );
                } else if let (Some(field), Some(record)) =
                    (self.layout.field_of[decl], self.record.as_mut())
                {
                    // Trimmed, and empty is NULL, as `fields::clean_value` says; the value is
                    // copied into the contact's one string, and the buffer is reused.
                    let value = crate::fields::trim_xml_space(&self.text);
                    if !value.is_empty() {
                        record.contact.push(field, value);
                    }
                    self.text.clear();
                }
            }
            (Content::Complex(group), state) => {
                if let Some(missing) = missing_child(self.schema, group, &state) {
                    let name = d.name.clone();
                    let missing = self.schema.decl(missing).name.clone();
                    let at = self.lines.position(self.xml.buffer_position());
                    self.error_at(
                        at,
                        format!(
                            "<{name}> (opened at {start}) is missing required element <{missing}>"
                        ),
                    );
                }
            }
            (Content::Simple(_), _) => unreachable!("simple content has State::Simple"),
        }
        if decl == self.layout.record {
            self.contacts += 1;
            let mut record = self.record.take()?;
            if self.errors.len() == record.errors_before {
                record.contact.sort_fields();
                return Some(record.contact);
            }
        }
        None
    }
}

/// Checks that child `p` of `group` may come next, and records it in `state`.
pub(super) fn admit(
    schema: &Schema,
    group: &Group,
    state: &mut State,
    p: usize,
) -> Result<(), String> {
    let children = group.children();
    match state {
        State::All { seen } => {
            let bit = 1u64 << p;
            if *seen & bit != 0 {
                return Err("appears twice".into());
            }
            *seen |= bit;
            Ok(())
        }
        State::Sequence { pos, count } => {
            if p == *pos && *count > 0 {
                let max = schema.decl(children[p]).max_occurs;
                if max.is_some_and(|m| *count >= m) {
                    return Err(format!(
                        "occurs more than {} times",
                        max.unwrap_or_default()
                    ));
                }
                *count += 1;
                return Ok(());
            }
            let from = if *count > 0 { *pos + 1 } else { *pos };
            if p < from {
                return Err("is out of order".into());
            }
            if *count < schema.decl(children[*pos]).min_occurs && p != *pos {
                let need = &schema.decl(children[*pos]).name;
                return Err(format!("comes before required <{need}>"));
            }
            if let Some(skipped) = children[from..p]
                .iter()
                .enumerate()
                .find(|(i, c)| from + i != *pos && schema.decl(**c).min_occurs > 0)
            {
                return Err(format!(
                    "comes before required <{}>",
                    schema.decl(*skipped.1).name
                ));
            }
            *pos = p;
            *count = 1;
            Ok(())
        }
        State::Simple => unreachable!("only element-only content admits children"),
    }
}

/// The first required child that never appeared, if any.
pub(super) fn missing_child(schema: &Schema, group: &Group, state: &State) -> Option<ElementId> {
    let children = group.children();
    match state {
        State::All { seen } => children
            .iter()
            .enumerate()
            .find(|(i, c)| seen & (1u64 << i) == 0 && schema.decl(**c).min_occurs > 0)
            .map(|(_, c)| *c),
        State::Sequence { pos, count } => {
            if *count < schema.decl(children.get(*pos).copied()?).min_occurs {
                return Some(children[*pos]);
            }
            children[*pos + 1..]
                .iter()
                .copied()
                .find(|c| schema.decl(*c).min_occurs > 0)
        }
        State::Simple => None,
    }
}

/// The first characters of a text, for messages.
pub(super) fn snippet(text: &str) -> String {
    let t = text.trim();
    let mut s: String = t.chars().take(30).collect();
    if t.chars().count() > 30 {
        s.push('…');
    }
    s
}
