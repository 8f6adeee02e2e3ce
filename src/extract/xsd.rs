//! Reads an XSD file into the content model the streaming validator enforces
//! ([`super::schema`]).
//!
//! The XSD in `schemas/` is the contract: ucm reads it at start-up and validates against what it
//! says. Only the subset of XSD that ucm can enforce exactly is accepted (global and local
//! `xs:element` with `minOccurs`/`maxOccurs`, `xs:complexType` with `xs:sequence` or `xs:all` of
//! elements, `xs:simpleType` restricting `xs:string` by `length`, `minLength`, `maxLength`,
//! named types and annotations). Any other construct is refused with its name and position, so
//! the validator can never silently enforce less than the schema asks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};

use super::position::LineIndex;
use super::schema::{Content, ElementDecl, ElementId, Group, Schema, SchemaError, SimpleType};

impl Schema {
    /// Reads and compiles the XSD at `path`.
    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let bytes = std::fs::read(path).map_err(|source| SchemaError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Compiles XSD text; `path` is used in messages only.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Schema, SchemaError> {
        let lines = LineIndex::new(bytes);
        let at = |offset: u64| lines.line_column(offset);
        let root = parse_tree(path, bytes, &at)?;
        let mut compiler = Compiler {
            path: path.to_owned(),
            at: &at,
            elements: Vec::new(),
            named_simple: HashMap::new(),
            named_complex: HashMap::new(),
            xsd_prefixes: Vec::new(),
            depth: 0,
        };
        compiler.compile(&root)
    }
}

const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

/// A parsed XSD element: just what interpretation needs.
#[derive(Debug)]
struct Node {
    /// Local name when in the XSD namespace, otherwise the qualified name with a marker.
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
    offset: u64,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_tree(
    path: &Path,
    bytes: &[u8],
    at: &dyn Fn(u64) -> (u64, u64),
) -> Result<Node, SchemaError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut stack: Vec<Node> = Vec::new();
    let malformed = |offset: u64, message: String| {
        let (line, column) = at(offset);
        SchemaError::Malformed {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    };
    loop {
        let before = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(e) => stack.push(node(&e, before, &malformed)?),
            Event::Empty(e) => {
                let n = node(&e, before, &malformed)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(n),
                    None => return Ok(n),
                }
            }
            Event::End(_) => {
                let n = stack.pop().expect("quick-xml checks end tags");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(n),
                    None => return Ok(n),
                }
            }
            Event::Eof => return Err(malformed(before, "no root element".into())),
            _ => {}
        }
    }
}

fn node(
    e: &BytesStart<'_>,
    offset: u64,
    malformed: &dyn Fn(u64, String) -> SchemaError,
) -> Result<Node, SchemaError> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| malformed(offset, err.to_string()))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| malformed(offset, err.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
        attrs,
        children: Vec::new(),
        offset,
    })
}

struct Compiler<'a> {
    path: PathBuf,
    at: &'a dyn Fn(u64) -> (u64, u64),
    elements: Vec<ElementDecl>,
    named_simple: HashMap<String, &'a Node>,
    named_complex: HashMap<String, &'a Node>,
    xsd_prefixes: Vec<String>,
    depth: usize,
}

impl<'a> Compiler<'a> {
    fn unsupported(&self, n: &Node, construct: String) -> SchemaError {
        let (line, column) = (self.at)(n.offset);
        SchemaError::Unsupported {
            path: self.path.clone(),
            line,
            column,
            construct,
        }
    }

    fn invalid(&self, n: &Node, message: String) -> SchemaError {
        let (line, column) = (self.at)(n.offset);
        SchemaError::Invalid {
            path: self.path.clone(),
            line,
            column,
            message,
        }
    }

    /// The XSD local name of `n` (`element` for `<xs:element>`), or `None` when `n` is not in
    /// the XSD namespace.
    fn xsd_name<'n>(&self, n: &'n Node) -> Option<&'n str> {
        match n.name.split_once(':') {
            Some((prefix, local)) if self.xsd_prefixes.iter().any(|p| p == prefix) => Some(local),
            None if self.xsd_prefixes.iter().any(|p| p.is_empty()) => Some(&n.name),
            _ => None,
        }
    }

    /// Resolves a QName value (`xs:string`) to a built-in XSD type name.
    fn builtin<'v>(&self, qname: &'v str) -> Option<&'v str> {
        match qname.split_once(':') {
            Some((prefix, local)) if self.xsd_prefixes.iter().any(|p| p == prefix) => Some(local),
            None if self.xsd_prefixes.iter().any(|p| p.is_empty()) => Some(qname),
            _ => None,
        }
    }

    fn describe(&self, n: &Node) -> String {
        match self.xsd_name(n) {
            Some(local) => format!("<xs:{local}>"),
            None => format!("<{}> (not in the XSD namespace)", n.name),
        }
    }

    /// Refuses attributes other than `allowed` (namespace declarations are always fine).
    fn check_attrs(&self, n: &Node, allowed: &[&str]) -> Result<(), SchemaError> {
        for (k, v) in &n.attrs {
            if k == "xmlns" || k.starts_with("xmlns:") || allowed.contains(&k.as_str()) {
                continue;
            }
            // Defaults that change nothing are accepted.
            let harmless = matches!(
                (k.as_str(), v.as_str()),
                ("elementFormDefault", "unqualified")
                    | ("attributeFormDefault", "unqualified")
                    | ("mixed", "false")
                    | ("nillable", "false")
                    | ("abstract", "false")
            );
            if !harmless {
                return Err(
                    self.unsupported(n, format!("attribute {k}=\"{v}\" on {}", self.describe(n)))
                );
            }
        }
        Ok(())
    }

    fn compile(&mut self, root: &'a Node) -> Result<Schema, SchemaError> {
        for (k, v) in &root.attrs {
            if v == XSD_NS {
                if k == "xmlns" {
                    self.xsd_prefixes.push(String::new());
                } else if let Some(p) = k.strip_prefix("xmlns:") {
                    self.xsd_prefixes.push(p.to_owned());
                }
            }
        }
        if self.xsd_name(root) != Some("schema") {
            return Err(self.invalid(
                root,
                format!("root element <{}> is not xs:schema ({XSD_NS})", root.name),
            ));
        }
        self.check_attrs(root, &["version", "xml:lang"])?;
        let mut globals = Vec::new();
        for child in &root.children {
            match self.xsd_name(child) {
                Some("annotation") => {}
                Some("element") => globals.push(child),
                Some(kind @ ("simpleType" | "complexType")) => {
                    let name = child.attr("name").ok_or_else(|| {
                        self.invalid(child, format!("top-level xs:{kind} without a name"))
                    })?;
                    let map = if kind == "simpleType" {
                        &mut self.named_simple
                    } else {
                        &mut self.named_complex
                    };
                    if map.insert(name.to_owned(), child).is_some() {
                        return Err(self.invalid(child, format!("type {name} is declared twice")));
                    }
                }
                _ => return Err(self.unsupported(child, self.describe(child))),
            }
        }
        if globals.is_empty() {
            return Err(self.invalid(root, "the schema declares no global element".into()));
        }
        let mut roots = Vec::new();
        for g in globals {
            if g.attr("minOccurs").is_some() || g.attr("maxOccurs").is_some() {
                return Err(self.invalid(
                    g,
                    "a global xs:element cannot have minOccurs/maxOccurs".into(),
                ));
            }
            roots.push(self.element(g)?);
        }
        Ok(Schema {
            path: self.path.clone(),
            elements: std::mem::take(&mut self.elements),
            roots,
        })
    }

    fn occurs(&self, n: &Node, attr: &str, default: u32) -> Result<Option<u32>, SchemaError> {
        match n.attr(attr) {
            None => Ok(Some(default)),
            Some("unbounded") if attr == "maxOccurs" => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| self.invalid(n, format!("{attr}=\"{v}\" is not a number"))),
        }
    }

    fn element(&mut self, n: &'a Node) -> Result<ElementId, SchemaError> {
        self.depth += 1;
        if self.depth > 32 {
            return Err(self.unsupported(n, "recursive element declarations".into()));
        }
        self.check_attrs(n, &["name", "type", "minOccurs", "maxOccurs"])?;
        let name = n
            .attr("name")
            .ok_or_else(|| {
                self.invalid(
                    n,
                    "xs:element without a name (ref= is not supported)".into(),
                )
            })?
            .to_owned();
        let min_occurs = self.occurs(n, "minOccurs", 1)?.unwrap_or(1);
        let max_occurs = self.occurs(n, "maxOccurs", 1)?;
        if max_occurs.is_some_and(|m| m < min_occurs) {
            return Err(self.invalid(n, format!("maxOccurs is less than minOccurs on <{name}>")));
        }
        let mut inline = None;
        for child in &n.children {
            match self.xsd_name(child) {
                Some("annotation") => {}
                Some("simpleType" | "complexType") if inline.is_none() => inline = Some(child),
                _ => {
                    return Err(self.unsupported(
                        child,
                        format!("{} inside xs:element", self.describe(child)),
                    ));
                }
            }
        }
        let content = match (n.attr("type"), inline) {
            (Some(_), Some(t)) => {
                return Err(self.invalid(
                    t,
                    format!("<{name}> has both a type attribute and an inline type"),
                ));
            }
            (None, None) => {
                return Err(
                    self.unsupported(n, format!("element <{name}> without a type (xs:anyType)"))
                );
            }
            (None, Some(t)) => self.type_node(t)?,
            (Some(qname), None) => {
                if let Some(builtin) = self.builtin(qname) {
                    if builtin == "string" {
                        Content::Simple(SimpleType::default())
                    } else {
                        return Err(self.unsupported(n, format!("built-in type xs:{builtin}")));
                    }
                } else if let Some(t) = self.named_simple.get(qname).copied() {
                    self.type_node(t)?
                } else if let Some(t) = self.named_complex.get(qname).copied() {
                    self.type_node(t)?
                } else {
                    return Err(
                        self.invalid(n, format!("type {qname} of <{name}> is not declared"))
                    );
                }
            }
        };
        let mut child_index = HashMap::with_hasher(foldhash::fast::FixedState::default());
        if let Content::Complex(group) = &content {
            for (pos, &c) in group.children().iter().enumerate() {
                let child_name = self.elements[c].name.as_bytes().into();
                if child_index.insert(child_name, pos).is_some() {
                    return Err(self.unsupported(
                        n,
                        format!(
                            "two declarations of <{}> in one content model",
                            self.elements[c].name
                        ),
                    ));
                }
            }
        }
        let type_name = n.attr("type").map(|qname| match self.builtin(qname) {
            Some(builtin) => (XSD_NS.to_owned(), builtin.to_owned()),
            None => (
                String::new(),
                qname.rsplit(':').next().unwrap_or(qname).to_owned(),
            ),
        });
        self.elements.push(ElementDecl {
            name,
            type_name,
            min_occurs,
            max_occurs,
            content,
            child_index,
        });
        self.depth -= 1;
        Ok(self.elements.len() - 1)
    }

    fn type_node(&mut self, t: &'a Node) -> Result<Content, SchemaError> {
        match self.xsd_name(t) {
            Some("simpleType") => self.simple_type(t).map(Content::Simple),
            Some("complexType") => self.complex_type(t).map(Content::Complex),
            _ => Err(self.unsupported(t, self.describe(t))),
        }
    }

    fn simple_type(&mut self, t: &'a Node) -> Result<SimpleType, SchemaError> {
        self.check_attrs(t, &["name"])?;
        let mut restriction = None;
        for c in &t.children {
            match self.xsd_name(c) {
                Some("annotation") => {}
                Some("restriction") if restriction.is_none() => restriction = Some(c),
                _ => {
                    return Err(
                        self.unsupported(c, format!("{} inside xs:simpleType", self.describe(c)))
                    );
                }
            }
        }
        let r = restriction
            .ok_or_else(|| self.invalid(t, "xs:simpleType without xs:restriction".into()))?;
        self.check_attrs(r, &["base"])?;
        let base = r.attr("base").unwrap_or_default();
        if self.builtin(base) != Some("string") {
            return Err(self.unsupported(
                r,
                format!("xs:restriction base=\"{base}\" (only xs:string)"),
            ));
        }
        let mut st = SimpleType::default();
        for f in &r.children {
            let facet = self.xsd_name(f);
            let value = || -> Result<usize, SchemaError> {
                let v = f.attr("value").unwrap_or_default();
                v.trim()
                    .parse()
                    .map_err(|_| self.invalid(f, format!("facet value \"{v}\" is not a number")))
            };
            match facet {
                Some("annotation") => {}
                Some("maxLength") => st.max_length = Some(value()?),
                Some("minLength") => st.min_length = Some(value()?),
                Some("length") => {
                    let v = value()?;
                    st.min_length = Some(v);
                    st.max_length = Some(v);
                }
                _ => return Err(self.unsupported(f, format!("facet {}", self.describe(f)))),
            }
            if facet != Some("annotation") {
                self.check_attrs(f, &["value"])?;
            }
        }
        Ok(st)
    }

    fn complex_type(&mut self, t: &'a Node) -> Result<Group, SchemaError> {
        self.check_attrs(t, &["name"])?;
        let mut group = None;
        for c in &t.children {
            match self.xsd_name(c) {
                Some("annotation") => {}
                Some(kind @ ("sequence" | "all")) if group.is_none() => {
                    self.check_attrs(c, &["minOccurs", "maxOccurs"])?;
                    if self.occurs(c, "minOccurs", 1)? != Some(1)
                        || self.occurs(c, "maxOccurs", 1)? != Some(1)
                    {
                        return Err(self.unsupported(
                            c,
                            format!("xs:{kind} with minOccurs/maxOccurs other than 1"),
                        ));
                    }
                    let mut children = Vec::new();
                    for e in &c.children {
                        match self.xsd_name(e) {
                            Some("annotation") => {}
                            Some("element") => children.push(self.element(e)?),
                            _ => {
                                return Err(self.unsupported(
                                    e,
                                    format!("{} inside xs:{kind}", self.describe(e)),
                                ));
                            }
                        }
                    }
                    if kind == "all" {
                        for &id in &children {
                            if self.elements[id].max_occurs != Some(1) {
                                return Err(self.invalid(
                                    c,
                                    format!(
                                        "<{}> in xs:all must have maxOccurs=\"1\"",
                                        self.elements[id].name
                                    ),
                                ));
                            }
                        }
                        group = Some(Group::All(children));
                    } else {
                        group = Some(Group::Sequence(children));
                    }
                }
                _ => {
                    return Err(
                        self.unsupported(c, format!("{} inside xs:complexType", self.describe(c)))
                    );
                }
            }
        }
        // An empty complex type allows no content at all: an empty sequence.
        Ok(group.unwrap_or(Group::Sequence(Vec::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(xsd: &str) -> Result<Schema, SchemaError> {
        Schema::parse(Path::new("test.xsd"), xsd.as_bytes())
    }

    const HEAD: &str = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">"#;

    #[test]
    fn the_shipped_schema_compiles_to_contacts_of_22_fields() {
        let schema = Schema::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/contacts.xsd"
        )))
        .unwrap();
        let root = schema.root_named(b"contacts").unwrap();
        let contact = schema.child_position(root, b"contact").unwrap();
        let Content::Complex(Group::Sequence(seq)) = &schema.decl(root).content else {
            panic!()
        };
        let contact_decl = schema.decl(seq[contact]);
        assert_eq!(contact_decl.max_occurs, None);
        let Content::Complex(Group::All(fields)) = &contact_decl.content else {
            panic!()
        };
        assert_eq!(fields.len(), 22);
        for &f in fields {
            assert_eq!(
                schema.decl(f).content,
                Content::Simple(SimpleType {
                    min_length: None,
                    max_length: Some(255)
                })
            );
            assert_eq!(schema.decl(f).min_occurs, 0);
        }
    }

    #[test]
    fn an_unsupported_construct_is_refused_by_name_and_position() {
        let xsd = format!(
            "{HEAD}\n<xs:element name=\"a\"><xs:complexType>\n  <xs:choice/></xs:complexType></xs:element></xs:schema>"
        );
        let err = compile(&xsd).unwrap_err().to_string();
        assert!(err.contains("test.xsd:3:3"), "{err}");
        assert!(
            err.contains("unsupported XSD construct <xs:choice>"),
            "{err}"
        );
    }

    #[test]
    fn a_pattern_facet_is_refused_rather_than_ignored() {
        let xsd = format!(
            "{HEAD}<xs:element name=\"a\"><xs:simpleType><xs:restriction base=\"xs:string\"><xs:pattern value=\"[0-9]+\"/></xs:restriction></xs:simpleType></xs:element></xs:schema>"
        );
        let err = compile(&xsd).unwrap_err().to_string();
        assert!(err.contains("facet <xs:pattern>"), "{err}");
    }

    #[test]
    fn attributes_and_target_namespaces_are_refused() {
        let xsd = format!(
            "{HEAD}<xs:element name=\"a\"><xs:complexType><xs:attribute name=\"x\"/></xs:complexType></xs:element></xs:schema>"
        );
        assert!(
            compile(&xsd)
                .unwrap_err()
                .to_string()
                .contains("<xs:attribute>")
        );
        let xsd = r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:x"><xs:element name="a" type="xs:string"/></xs:schema>"#;
        assert!(
            compile(xsd)
                .unwrap_err()
                .to_string()
                .contains("targetNamespace")
        );
    }

    #[test]
    fn other_builtin_types_are_refused() {
        let xsd = format!("{HEAD}<xs:element name=\"a\" type=\"xs:int\"/></xs:schema>");
        assert!(
            compile(&xsd)
                .unwrap_err()
                .to_string()
                .contains("built-in type xs:int")
        );
    }

    #[test]
    fn named_types_and_any_prefix_resolve() {
        let xsd = r#"<x:schema xmlns:x="http://www.w3.org/2001/XMLSchema">
            <x:simpleType name="short"><x:restriction base="x:string"><x:length value="2"/></x:restriction></x:simpleType>
            <x:complexType name="pair"><x:sequence><x:element name="x" type="short" maxOccurs="3"/></x:sequence></x:complexType>
            <x:element name="root" type="pair"/></x:schema>"#;
        let schema = compile(xsd).unwrap();
        let root = schema.root_named(b"root").unwrap();
        let x = schema.decl(root).content.clone();
        let Content::Complex(Group::Sequence(c)) = x else {
            panic!()
        };
        assert_eq!(schema.decl(c[0]).max_occurs, Some(3));
        assert_eq!(
            schema.decl(c[0]).content,
            Content::Simple(SimpleType {
                min_length: Some(2),
                max_length: Some(2)
            })
        );
    }
}
