//! The content model the streaming validator enforces: element declarations, their groups
//! (sequence or all) and simple types, and the schema's errors. Compiled from an XSD file by
//! [`super::xsd`].

use std::collections::HashMap;
use std::path::PathBuf;

/// Index of an element declaration in [`Schema::elements`].
pub type ElementId = usize;

/// The constraints of a text-only element (an `xs:string` restriction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimpleType {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
}

impl SimpleType {
    /// Whether `text` (as written, untrimmed) is within the length bounds, in characters.
    pub fn admits(&self, text: &str) -> bool {
        // The byte length bounds the character count: count only when it could matter.
        let too_long = self
            .max_length
            .is_some_and(|m| text.len() > m && text.chars().count() > m);
        let too_short = self
            .min_length
            .is_some_and(|m| text.len() < m || text.chars().count() < m);
        !(too_long || too_short)
    }
}

/// How the children of an element-only element are constrained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Group {
    /// `xs:sequence`: the children in this order, each within its occurrence bounds.
    Sequence(Vec<ElementId>),
    /// `xs:all`: each child at most once (or exactly once when required), in any order.
    All(Vec<ElementId>),
}

impl Group {
    pub fn children(&self) -> &[ElementId] {
        match self {
            Group::Sequence(c) | Group::All(c) => c,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Simple(SimpleType),
    Complex(Group),
}

/// One `xs:element` declaration.
#[derive(Clone, Debug)]
pub struct ElementDecl {
    pub name: String,
    /// The type the declaration names (`type="fieldValue"`: no namespace, as the schema has
    /// no target namespace; `xs:string`: the XML Schema namespace), None for an inline type:
    /// the one an instance's `xsi:type` may name.
    pub type_name: Option<(String, String)>,
    pub min_occurs: u32,
    /// `None` is `unbounded`.
    pub max_occurs: Option<u32>,
    pub content: Content,
    /// For element-only content: child name → position in the group.
    pub child_index: HashMap<Box<[u8]>, usize, foldhash::fast::FixedState>,
}

/// A compiled schema: the declarations the validator walks.
#[derive(Clone, Debug)]
pub struct Schema {
    pub path: PathBuf,
    pub elements: Vec<ElementDecl>,
    /// Global element declarations: the allowed document roots.
    pub roots: Vec<ElementId>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read schema {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: schema is not well-formed XML: {message}")]
    Malformed {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    #[error(
        "{path}:{line}:{column}: unsupported XSD construct {construct}; ucm's validator enforces only \
         xs:element, xs:complexType with xs:sequence or xs:all, and xs:simpleType restricting xs:string \
         by length, minLength or maxLength. Change the schema or extend the validator"
    )]
    Unsupported {
        path: PathBuf,
        line: u64,
        column: u64,
        construct: String,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
}

impl Schema {
    pub fn decl(&self, id: ElementId) -> &ElementDecl {
        &self.elements[id]
    }

    /// The global declaration named `name`, if any.
    pub fn root_named(&self, name: &[u8]) -> Option<ElementId> {
        self.roots
            .iter()
            .copied()
            .find(|&id| self.elements[id].name.as_bytes() == name)
    }

    /// Position of the child called `name` in `parent`'s group, if allowed there.
    pub fn child_position(&self, parent: ElementId, name: &[u8]) -> Option<usize> {
        self.elements[parent].child_index.get(name).copied()
    }

    /// Names of the children allowed in `parent`, for error messages.
    pub fn child_names(&self, parent: ElementId) -> String {
        match &self.elements[parent].content {
            Content::Complex(g) => g
                .children()
                .iter()
                .map(|&c| self.elements[c].name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Content::Simple(_) => String::new(),
        }
    }
}
