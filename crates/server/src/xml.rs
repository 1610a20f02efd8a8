//! Writing the XML documents of the XML-speaking protocols (S3's REST-XML, SNS's query
//! protocol): elements with escaped text, nothing more. Each protocol brings its own
//! escaping, since they treat characters XML 1.0 cannot carry differently.

/// Escapes `text` onto the end of the document.
pub type Escape = fn(text: &str, out: &mut String);

/// Builds an XML document element by element, escaping all text.
pub struct XmlWriter {
    out: String,
    escape: Escape,
}

impl XmlWriter {
    pub fn new(escape: Escape) -> XmlWriter {
        XmlWriter { out: String::with_capacity(256), escape }
    }

    /// Text that is already XML: a declaration, a root tag with its namespace, a fragment
    /// written by another writer.
    pub fn raw(&mut self, xml: &str) -> &mut XmlWriter {
        self.out.push_str(xml);
        self
    }

    pub fn open(&mut self, tag: &str) -> &mut XmlWriter {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut XmlWriter {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn element(&mut self, tag: &str, text: &str) -> &mut XmlWriter {
        self.open(tag);
        (self.escape)(text, &mut self.out);
        self.close(tag)
    }

    pub fn finish(self) -> String {
        self.out
    }
}
