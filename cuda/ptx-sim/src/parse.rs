//! A line-oriented parser for the PTX that nvcc 11.8 emits, decoding straight into [`crate::ir`].
//! Everything outside the allowlist is refused with the line number and text.

use crate::ir::*;
use crate::SimError;
use std::collections::HashMap;

/// Tag of parameter-space addresses taken with `mov %rd, param`: `PARAM_ADDR | index << 32 |
/// byte offset within that parameter`. A generic or global access through one faults (it is far
/// outside the global arena); an ld.param through one must stay inside that parameter.
pub const PARAM_ADDR: u64 = 0xF000_0000_0000_0000;

/// Parser options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept `.ftz` on f32 operations (flush subnormal inputs and results to signed zero)
    /// instead of refusing it. For negative controls only: the shipped PTX must never need it.
    pub allow_ftz: bool,
}

#[derive(Debug)]
enum Item {
    Stmt(String, u32),
    Label(String, u32),
    Open(u32),
    Close(u32),
}

fn err(line: u32, text: &str, msg: impl Into<String>) -> SimError {
    SimError {
        line,
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        msg: msg.into(),
    }
}

/// Splits PTX text into statements, labels and braces, dropping comments.
fn tokenize(src: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut buf = String::new();
    let mut start = 1u32;
    let mut line = 1u32;
    let mut paren = 0i32;
    let mut chars = src.chars().peekable();
    let mut in_block_comment = false;
    while let Some(c) = chars.next() {
        if in_block_comment {
            if c == '\n' {
                line += 1;
            } else if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_block_comment = false;
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c2 in chars.by_ref() {
                    if c2 == '\n' {
                        break;
                    }
                }
                newline(&mut buf, &mut items, start, &mut paren);
                line += 1;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                in_block_comment = true;
            }
            '\n' => {
                newline(&mut buf, &mut items, start, &mut paren);
                line += 1;
            }
            _ => {
                if buf.trim().is_empty() {
                    buf.clear();
                    start = line;
                    if c.is_whitespace() {
                        continue;
                    }
                    if c == '{' {
                        items.push(Item::Open(line));
                        continue;
                    }
                    if c == '}' {
                        items.push(Item::Close(line));
                        continue;
                    }
                }
                match c {
                    '(' => paren += 1,
                    ')' => paren -= 1,
                    _ => {}
                }
                if c == ';' && paren == 0 {
                    items.push(Item::Stmt(std::mem::take(&mut buf), start));
                } else if c == ':' && paren == 0 && is_ident(buf.trim()) {
                    items.push(Item::Label(buf.trim().to_string(), start));
                    buf.clear();
                } else if c == '{'
                    && paren == 0
                    && (buf.contains(".entry") || buf.contains(".func"))
                {
                    items.push(Item::Stmt(std::mem::take(&mut buf), start));
                    items.push(Item::Open(line));
                } else {
                    buf.push(c);
                }
            }
        }
    }
    newline(&mut buf, &mut items, start, &mut paren);
    if !buf.trim().is_empty() {
        items.push(Item::Stmt(buf, start));
    }
    items
}

/// Directives without a terminating semicolon end at the line break.
fn newline(buf: &mut String, items: &mut Vec<Item>, start: u32, _paren: &mut i32) {
    let t = buf.trim();
    if [
        ".version",
        ".target",
        ".address_size",
        ".loc",
        ".file",
        ".section",
    ]
    .iter()
    .any(|d| t.starts_with(d))
    {
        items.push(Item::Stmt(std::mem::take(buf), start));
    } else if !t.is_empty() {
        buf.push(' ');
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
        && !s.starts_with('.')
}

/// Splits operands at top-level commas (not inside `[]` or `{}`).
fn split_operands(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A parsed PTX module: its kernels by name.
#[derive(Clone, Debug)]
pub struct Module {
    /// Kernels in file order.
    pub kernels: Vec<Kernel>,
}

impl Module {
    /// Finds a kernel by entry name.
    pub fn kernel(&self, name: &str) -> Option<&Kernel> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

/// Parses and decodes a PTX module.
pub fn parse_module(src: &str, opts: ParseOptions) -> Result<Module, SimError> {
    let items = tokenize(src);
    let mut kernels = Vec::new();
    // Module-scope shared variables are laid out ahead of each kernel's own.
    let mut module_shared: Vec<(String, u32, u32)> = Vec::new(); // name, align, size
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Item::Stmt(s, line) => {
                let t = s.trim();
                let first = t.split_whitespace().next().unwrap_or("");
                if t.contains(".entry") {
                    let (k, next) = parse_entry(&items, i, &module_shared, opts)?;
                    kernels.push(k);
                    i = next;
                    continue;
                } else if t.contains(".func") {
                    return Err(err(*line, t, "device functions and calls are not supported (kernels must be fully inlined)"));
                } else if first == ".version" {
                    let v = t[8..].trim();
                    let ok = v
                        .split_once('.')
                        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
                    match ok {
                        Some((maj, min)) if maj < 7 || (maj == 7 && min <= 8) => {}
                        _ => {
                            return Err(err(*line, t, "PTX ISA version above 7.8 is not supported"))
                        }
                    }
                } else if first == ".target"
                    || first == ".address_size"
                    || first == ".loc"
                    || first == ".file"
                    || first == ".pragma"
                    || first == ".section"
                {
                    if first == ".address_size" && !t.ends_with("64") {
                        return Err(err(*line, t, "only 64-bit addressing is supported"));
                    }
                } else if t.contains(".shared") && !t.contains(".extern") {
                    let (name, align, size) = parse_shared_decl(t, *line)?;
                    module_shared.push((name, align, size));
                } else if t.contains(".extern") && t.contains(".shared") {
                    // Dynamic shared memory declared at module scope.
                    let (name, align, _) = parse_shared_decl(t, *line)?;
                    module_shared.push((name, align, u32::MAX));
                } else {
                    return Err(err(*line, t, "unsupported module-level statement"));
                }
            }
            Item::Label(l, line) => return Err(err(*line, l, "label outside a kernel")),
            Item::Open(line) | Item::Close(line) => {
                return Err(err(*line, "{", "brace outside a kernel"))
            }
        }
        i += 1;
    }
    Ok(Module { kernels })
}

fn parse_shared_decl(t: &str, line: u32) -> Result<(String, u32, u32), SimError> {
    // .shared .align 4 .b8 name[1024]   or   .extern .shared .align 16 .b8 name[]
    let toks: Vec<&str> = t.split_whitespace().collect();
    let mut align = 1;
    let mut elem = 1;
    let mut name = None;
    let mut k = 0;
    while k < toks.len() {
        let tok = toks[k];
        if tok == ".align" {
            align = toks
                .get(k + 1)
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| err(line, t, "bad .align"))?;
            k += 1;
        } else if let Some(ty) = tok.strip_prefix('.').and_then(Ty::parse) {
            elem = ty.bytes();
        } else if !tok.starts_with('.') {
            name = Some(tok);
        }
        k += 1;
    }
    let name = name.ok_or_else(|| err(line, t, "shared declaration without a name"))?;
    let (n, count) = match name.split_once('[') {
        Some((n, rest)) => {
            let c = rest.trim_end_matches(']');
            let count = if c.is_empty() {
                0
            } else {
                c.parse::<u32>()
                    .map_err(|_| err(line, t, "bad array size"))?
            };
            (n, count)
        }
        None => (name, 1),
    };
    Ok((n.to_string(), align.max(elem), count * elem))
}

struct Ctx {
    scopes: Vec<HashMap<String, u32>>,
    nregs: u32,
    params: HashMap<String, u32>, // name -> offset
    param_index: HashMap<String, usize>,
    shared: HashMap<String, u32>, // name -> offset
}

impl Ctx {
    fn reg(&self, name: &str) -> Option<u32> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }
}

fn parse_entry(
    items: &[Item],
    start: usize,
    module_shared: &[(String, u32, u32)],
    opts: ParseOptions,
) -> Result<(Kernel, usize), SimError> {
    let (header, hline) = match &items[start] {
        Item::Stmt(s, l) => (s.trim().to_string(), *l),
        _ => unreachable!("parse_entry starts at a statement"),
    };
    let open = header
        .find('(')
        .ok_or_else(|| err(hline, &header, "entry without a parameter list"))?;
    let close = header
        .rfind(')')
        .ok_or_else(|| err(hline, &header, "entry without a parameter list"))?;
    let name = header[..open]
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string();
    // Performance directives after the parameter list: `.maxntid 256, 1, 1`, `.reqntid ...`.
    let mut maxntid = None;
    let mut reqntid = None;
    for part in header[close + 1..]
        .split('.')
        .filter(|p| !p.trim().is_empty())
    {
        let part = part.trim();
        let (dir, args) = part.split_once(char::is_whitespace).unwrap_or((part, ""));
        let dims: Vec<u32> = args
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let dim = |i: usize| dims.get(i).copied().unwrap_or(1);
        let triple = (dim(0), dim(1), dim(2));
        match dir {
            "maxntid" if !dims.is_empty() => maxntid = Some(triple),
            "reqntid" if !dims.is_empty() => reqntid = Some(triple),
            "minnctapersm" | "maxnreg" => {}
            _ => {
                return Err(err(
                    hline,
                    &header,
                    format!("unsupported entry directive `.{part}`"),
                ))
            }
        }
    }
    let mut params = Vec::new();
    let mut off = 0u32;
    for p in header[open + 1..close].split(',') {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let toks: Vec<&str> = p.split_whitespace().collect();
        if toks.first() != Some(&".param") {
            return Err(err(hline, p, "expected .param"));
        }
        let mut align = 0;
        let mut ty = None;
        let mut pname = "";
        let mut k = 1;
        while k < toks.len() {
            if toks[k] == ".align" {
                align = toks
                    .get(k + 1)
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| err(hline, p, "bad .align"))?;
                k += 1;
            } else if toks[k] == ".ptr" || toks[k].starts_with(".global") {
                // `.ptr.global.align N` attributes: informational only.
            } else if let Some(t) = toks[k].strip_prefix('.').and_then(Ty::parse) {
                ty = Some(t);
            } else {
                pname = toks[k];
            }
            k += 1;
        }
        let ty = ty.ok_or_else(|| err(hline, p, "parameter without a type"))?;
        let (pname, size, sty) = match pname.split_once('[') {
            Some((n, rest)) => {
                let count: u32 = rest
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| err(hline, p, "bad array size"))?;
                (n, count * ty.bytes(), None)
            }
            None => (pname, ty.bytes(), Some(ty)),
        };
        let align = if align == 0 { ty.bytes() } else { align };
        off = off.next_multiple_of(align);
        params.push(Param {
            name: pname.to_string(),
            ty: sty,
            offset: off,
            size,
            align,
        });
        off += size;
    }
    let mut ctx = Ctx {
        scopes: vec![HashMap::new()],
        nregs: 0,
        params: params.iter().map(|p| (p.name.clone(), p.offset)).collect(),
        param_index: params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect(),
        shared: HashMap::new(),
    };
    let mut shared_bytes = 0u32;
    let mut dynamic: Vec<(String, u32)> = Vec::new();
    for (n, a, s) in module_shared {
        if *s == u32::MAX {
            dynamic.push((n.clone(), *a));
        } else {
            shared_bytes = shared_bytes.next_multiple_of(*a);
            ctx.shared.insert(n.clone(), shared_bytes);
            shared_bytes += s;
        }
    }
    // First pass over the body: collect statements with their scope events, labels.
    let mut i = start + 1;
    match items.get(i) {
        Some(Item::Open(_)) => i += 1,
        _ => return Err(err(hline, &header, "entry without a body")),
    }
    let mut depth = 1;
    let mut body: Vec<&Item> = Vec::new();
    while i < items.len() {
        match &items[i] {
            Item::Open(_) => depth += 1,
            Item::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    i += 1;
                    break;
                }
            }
            _ => {}
        }
        body.push(&items[i]);
        i += 1;
    }
    if depth != 0 {
        return Err(err(hline, &header, "unterminated entry body"));
    }
    // Labels map to the index of the next instruction: count instructions in a dry pass.
    let mut labels: HashMap<String, u32> = HashMap::new();
    let mut n = 0u32;
    for it in &body {
        match it {
            Item::Label(l, _) => {
                labels.insert(l.clone(), n);
            }
            Item::Stmt(s, line) => {
                let t = s.trim();
                if !t.starts_with('.') {
                    n += 1;
                } else if t.starts_with(".shared") {
                    let (n, a, s) = parse_shared_decl(t, *line)?;
                    shared_bytes = shared_bytes.next_multiple_of(a);
                    ctx.shared.insert(n, shared_bytes);
                    shared_bytes += s;
                }
            }
            _ => {}
        }
    }
    // Dynamic shared symbols start after the static ones, 16-byte aligned.
    let dyn_base = shared_bytes.next_multiple_of(16);
    for (n, _) in dynamic {
        ctx.shared.insert(n, dyn_base);
    }
    let mut insts = Vec::new();
    let mut texts = Vec::new();
    for it in body {
        match it {
            Item::Open(_) => ctx.scopes.push(HashMap::new()),
            Item::Close(_) => {
                ctx.scopes.pop();
            }
            Item::Label(..) => {}
            Item::Stmt(s, line) => {
                let t = s.trim();
                if t.starts_with(".reg") {
                    declare_regs(&mut ctx, t, *line)?;
                } else if t.starts_with(".shared") {
                    // Laid out in the first pass.
                } else if t.starts_with(".local") {
                    return Err(err(*line, t, "the .local state space is refused"));
                } else if t.starts_with(".pragma")
                    || t.starts_with(".loc")
                    || t.starts_with(".file")
                {
                } else if t.starts_with('.') {
                    return Err(err(*line, t, "unsupported directive in a kernel body"));
                } else {
                    let inst = decode(&ctx, &labels, t, *line, opts)?;
                    insts.push(inst);
                    texts.push(t.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    Ok((
        Kernel {
            name,
            params,
            param_bytes: off,
            shared_bytes: dyn_base,
            nregs: ctx.nregs,
            maxntid,
            reqntid,
            insts,
            texts,
        },
        i,
    ))
}

fn declare_regs(ctx: &mut Ctx, t: &str, line: u32) -> Result<(), SimError> {
    // .reg .f32 %f<36>;   .reg .b16 lo, hi;
    let rest = t[4..].trim();
    let (ty, names) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| err(line, t, "bad .reg"))?;
    if ty.strip_prefix('.').and_then(Ty::parse).is_none() {
        return Err(err(line, t, "bad .reg type"));
    }
    for n in names.split(',') {
        let n = n.trim();
        if let Some((prefix, cnt)) = n.split_once('<') {
            let cnt: u32 = cnt
                .trim_end_matches('>')
                .parse()
                .map_err(|_| err(line, t, "bad register range"))?;
            for k in 0..cnt {
                let idx = ctx.nregs;
                ctx.nregs += 1;
                ctx.scopes
                    .last_mut()
                    .expect("scope")
                    .insert(format!("{prefix}{k}"), idx);
            }
        } else {
            let idx = ctx.nregs;
            ctx.nregs += 1;
            ctx.scopes
                .last_mut()
                .expect("scope")
                .insert(n.to_string(), idx);
        }
    }
    Ok(())
}

fn parse_imm(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0f").or_else(|| s.strip_prefix("0F")) {
        if h.len() == 8 {
            return u32::from_str_radix(h, 16).ok().map(|v| v as u64);
        }
    }
    if let Some(h) = s.strip_prefix("0d").or_else(|| s.strip_prefix("0D")) {
        if h.len() == 16 {
            return u64::from_str_radix(h, 16).ok();
        }
    }
    let s = s.trim_end_matches('U');
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if body.chars().all(|c| c.is_ascii_digit()) && !body.is_empty() {
        body.parse::<u64>().ok()?
    } else {
        return None;
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

fn special(s: &str) -> Option<Special> {
    let dim = |d: &str| match d {
        "x" => Some(0u8),
        "y" => Some(1),
        "z" => Some(2),
        _ => None,
    };
    if let Some((base, d)) = s.split_once('.') {
        let d = dim(d)?;
        return Some(match base {
            "%tid" => Special::Tid(d),
            "%ntid" => Special::Ntid(d),
            "%ctaid" => Special::Ctaid(d),
            "%nctaid" => Special::Nctaid(d),
            _ => return None,
        });
    }
    Some(match s {
        "%laneid" => Special::Laneid,
        "%warpid" => Special::Warpid,
        "%nwarpid" => Special::Nwarpid,
        _ => return None,
    })
}

struct D<'a> {
    ctx: &'a Ctx,
    t: &'a str,
    line: u32,
}

impl D<'_> {
    fn e(&self, msg: impl Into<String>) -> SimError {
        err(self.line, self.t, msg)
    }
    fn reg(&self, s: &str) -> Result<u32, SimError> {
        self.ctx
            .reg(s.trim())
            .ok_or_else(|| self.e(format!("unknown register `{}`", s.trim())))
    }
    fn src(&self, s: &str) -> Result<Src, SimError> {
        let s = s.trim();
        if let Some(r) = self.ctx.reg(s) {
            return Ok(Src::R(r));
        }
        if let Some(v) = parse_imm(s) {
            return Ok(Src::I(v));
        }
        if let Some(&off) = self.ctx.shared.get(s) {
            return Ok(Src::I(off as u64));
        }
        if special(s).is_some() {
            return Err(self.e(format!(
                "special register `{s}` is only supported as the source of mov/cvt"
            )));
        }
        Err(self.e(format!("unknown operand `{s}`")))
    }
    fn addr(&self, s: &str) -> Result<Addr, SimError> {
        let s = s.trim();
        let inner = s
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .ok_or_else(|| self.e(format!("expected an address, found `{s}`")))?;
        let mut base = None;
        let mut off = 0i64;
        // Terms joined by '+' (a negative offset appears as `+-4`).
        for term in inner.split('+') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            if let Some(r) = self.ctx.reg(term) {
                if base.replace(r).is_some() {
                    return Err(self.e("two base registers in an address"));
                }
            } else if let Some(v) = parse_imm(term) {
                off = off.wrapping_add(v as i64);
            } else if let Some(&o) = self.ctx.params.get(term) {
                off += o as i64;
            } else if let Some(&o) = self.ctx.shared.get(term) {
                off += o as i64;
            } else {
                return Err(self.e(format!("unknown address term `{term}`")));
            }
        }
        Ok(Addr { base, off })
    }
}

fn cmp_of(s: &str) -> Option<Cmp> {
    Some(match s {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "lt" | "lo" => Cmp::Lt,
        "le" | "ls" => Cmp::Le,
        "gt" | "hi" => Cmp::Gt,
        "ge" | "hs" => Cmp::Ge,
        "equ" => Cmp::Equ,
        "neu" => Cmp::Neu,
        "ltu" => Cmp::Ltu,
        "leu" => Cmp::Leu,
        "gtu" => Cmp::Gtu,
        "geu" => Cmp::Geu,
        "num" => Cmp::Num,
        "nan" => Cmp::Nan,
        _ => return None,
    })
}

fn decode(
    ctx: &Ctx,
    labels: &HashMap<String, u32>,
    t: &str,
    line: u32,
    opts: ParseOptions,
) -> Result<Inst, SimError> {
    let d = D { ctx, t, line };
    let mut rest = t;
    let mut guard = None;
    if let Some(g) = rest.strip_prefix('@') {
        let (p, r) = g
            .split_once(char::is_whitespace)
            .ok_or_else(|| d.e("guard without an instruction"))?;
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p),
        };
        guard = Some((d.reg(p)?, neg));
        rest = r.trim_start();
    }
    let (opcode, ops_text) = match rest.split_once(char::is_whitespace) {
        Some((o, r)) => (o, r.trim()),
        None => (rest, ""),
    };
    let ops = split_operands(ops_text);
    let parts: Vec<&str> = opcode.split('.').collect();
    let name = parts[0];
    let mods = &parts[1..];
    let has = |m: &str| mods.contains(&m);
    let types: Vec<Ty> = mods.iter().filter_map(|m| Ty::parse(m)).collect();
    let nops = |n: usize| -> Result<(), SimError> {
        if ops.len() == n {
            Ok(())
        } else {
            Err(d.e(format!("expected {n} operands, found {}", ops.len())))
        }
    };
    if has("approx") || has("full") {
        return Err(d.e("approximate operations (.approx/.full) are refused"));
    }
    let ftz = has("ftz");
    if ftz && !opts.allow_ftz {
        return Err(d.e(".ftz is refused (subnormals must be kept)"));
    }
    if has("local") {
        return Err(d.e("the .local state space is refused"));
    }
    let one_ty = || -> Result<Ty, SimError> {
        match types.as_slice() {
            [t] => Ok(*t),
            _ => Err(d.e("expected exactly one type suffix")),
        }
    };
    let float_rn = |ty: Ty| -> Result<(), SimError> {
        let rounding = mods
            .iter()
            .filter(|m| matches!(**m, "rn" | "rz" | "rm" | "rp"))
            .count();
        if !has("rn") || rounding != 1 {
            let what = if ty == Ty::F32 { "f32" } else { "f64" };
            return Err(d.e(format!(
                "{what} arithmetic must be .rn (round to nearest even, no contraction)"
            )));
        }
        if has("sat") {
            return Err(d.e(".sat on float arithmetic is refused"));
        }
        Ok(())
    };
    let op = match name {
        "add" | "sub" | "mul" | "div" | "min" | "max" => {
            nops(3)?;
            let ty = one_ty()?;
            let (dd, a, b) = (d.reg(&ops[0])?, d.src(&ops[1])?, d.src(&ops[2])?);
            match ty {
                Ty::F32 | Ty::F64 => {
                    let fop = match name {
                        "add" => FOp::Add,
                        "sub" => FOp::Sub,
                        "mul" => FOp::Mul,
                        "div" => FOp::Div,
                        "min" => FOp::Min,
                        _ => FOp::Max,
                    };
                    if matches!(fop, FOp::Min | FOp::Max) {
                        if mods.len() != 1 + ftz as usize {
                            return Err(
                                d.e("min/max variants (.NaN, .xorsign.abs) are not supported")
                            );
                        }
                    } else {
                        float_rn(ty)?;
                    }
                    if ty == Ty::F32 {
                        Op::F32Bin {
                            op: fop,
                            ftz,
                            d: dd,
                            a,
                            b,
                        }
                    } else {
                        if ftz {
                            return Err(d.e(".ftz is refused"));
                        }
                        Op::F64Bin {
                            op: fop,
                            d: dd,
                            a,
                            b,
                        }
                    }
                }
                Ty::Int(w, signed) if w >= 16 => {
                    let iop = match (name, has("hi"), has("wide")) {
                        ("add", ..) => IntOp::Add,
                        ("sub", ..) => IntOp::Sub,
                        ("mul", false, false) if has("lo") => IntOp::MulLo,
                        ("mul", true, false) => IntOp::MulHi,
                        ("mul", false, true) => {
                            if w == 64 {
                                return Err(d.e("mul.wide.*64 does not exist"));
                            }
                            return Ok(Inst {
                                op: Op::MulWide {
                                    w,
                                    signed,
                                    d: dd,
                                    a,
                                    b,
                                    c: None,
                                },
                                guard,
                                line,
                            });
                        }
                        ("div", ..) => IntOp::Div,
                        ("min", ..) => IntOp::Min,
                        ("max", ..) => IntOp::Max,
                        _ => return Err(d.e("unsupported integer variant")),
                    };
                    if has("sat") || has("cc") {
                        return Err(d.e("saturating/carry integer arithmetic is not supported"));
                    }
                    Op::Int {
                        op: iop,
                        w,
                        signed,
                        d: dd,
                        a,
                        b,
                    }
                }
                _ => return Err(d.e("unsupported type")),
            }
        }
        "rem" | "and" | "or" | "xor" | "shl" | "shr" => {
            nops(3)?;
            let ty = one_ty()?;
            let (dd, a, b) = (d.reg(&ops[0])?, d.src(&ops[1])?, d.src(&ops[2])?);
            let iop = match name {
                "rem" => IntOp::Rem,
                "and" => IntOp::And,
                "or" => IntOp::Or,
                "xor" => IntOp::Xor,
                "shl" => IntOp::Shl,
                _ => IntOp::Shr,
            };
            match ty {
                Ty::Pred if matches!(iop, IntOp::And | IntOp::Or | IntOp::Xor) => Op::PredBin {
                    op: iop,
                    d: dd,
                    a,
                    b,
                },
                Ty::Int(w, signed) if w >= 16 => Op::Int {
                    op: iop,
                    w,
                    signed,
                    d: dd,
                    a,
                    b,
                },
                _ => return Err(d.e("unsupported type")),
            }
        }
        "not" | "neg" | "abs" | "popc" | "clz" | "brev" | "cnot" | "sqrt" | "rcp" => {
            nops(2)?;
            let ty = one_ty()?;
            let (dd, a) = (d.reg(&ops[0])?, d.src(&ops[1])?);
            match (name, ty) {
                ("not", Ty::Pred) => Op::PredNot { d: dd, a },
                ("sqrt" | "rcp" | "neg" | "abs", Ty::F32 | Ty::F64) => {
                    let fun = match name {
                        "sqrt" => FUn::Sqrt,
                        "rcp" => FUn::Rcp,
                        "neg" => FUn::Neg,
                        _ => FUn::Abs,
                    };
                    if matches!(fun, FUn::Sqrt | FUn::Rcp) {
                        float_rn(ty)?;
                    }
                    if ty == Ty::F32 {
                        Op::F32Un {
                            op: fun,
                            ftz,
                            d: dd,
                            a,
                        }
                    } else {
                        Op::F64Un { op: fun, d: dd, a }
                    }
                }
                (_, Ty::Int(w, signed)) if w >= 16 => {
                    let u = match name {
                        "not" => IntUn::Not,
                        "neg" => IntUn::Neg,
                        "abs" => IntUn::Abs,
                        "popc" => IntUn::Popc,
                        "clz" => IntUn::Clz,
                        "brev" => IntUn::Brev,
                        "cnot" => IntUn::Cnot,
                        _ => return Err(d.e("unsupported type")),
                    };
                    Op::IntUn {
                        op: u,
                        w,
                        signed,
                        d: dd,
                        a,
                    }
                }
                _ => return Err(d.e("unsupported type")),
            }
        }
        "fma" | "mad" => {
            nops(4)?;
            let ty = one_ty()?;
            let (dd, a, b, c) = (
                d.reg(&ops[0])?,
                d.src(&ops[1])?,
                d.src(&ops[2])?,
                d.src(&ops[3])?,
            );
            match ty {
                Ty::F32 | Ty::F64 => {
                    if name == "mad" {
                        return Err(d.e("mad.f32/f64 is refused (use fma.rn explicitly)"));
                    }
                    float_rn(ty)?;
                    if ty == Ty::F32 {
                        Op::F32Fma {
                            ftz,
                            d: dd,
                            a,
                            b,
                            c,
                        }
                    } else {
                        Op::F64Fma { d: dd, a, b, c }
                    }
                }
                Ty::Int(w, signed) if name == "mad" && w >= 16 => {
                    if has("wide") {
                        Op::MulWide {
                            w,
                            signed,
                            d: dd,
                            a,
                            b,
                            c: Some(c),
                        }
                    } else if has("lo") || has("hi") {
                        Op::Mad {
                            hi: has("hi"),
                            w,
                            signed,
                            d: dd,
                            a,
                            b,
                            c,
                        }
                    } else {
                        return Err(d.e("mad needs .lo, .hi or .wide"));
                    }
                }
                _ => return Err(d.e("unsupported type")),
            }
        }
        "bfe" => {
            nops(4)?;
            let ty = one_ty()?;
            let Ty::Int(w, signed) = ty else {
                return Err(d.e("unsupported type"));
            };
            Op::Bfe {
                w,
                signed,
                d: d.reg(&ops[0])?,
                a: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
                c: d.src(&ops[3])?,
            }
        }
        "bfi" => {
            nops(5)?;
            let Ty::Int(w, _) = one_ty()? else {
                return Err(d.e("unsupported type"));
            };
            Op::Bfi {
                w,
                d: d.reg(&ops[0])?,
                f: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
                c: d.src(&ops[3])?,
                l: d.src(&ops[4])?,
            }
        }
        "prmt" => {
            nops(4)?;
            if mods.len() != 1 {
                return Err(d.e("prmt modes other than the default are not supported"));
            }
            Op::Prmt {
                d: d.reg(&ops[0])?,
                a: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
                c: d.src(&ops[3])?,
            }
        }
        "setp" => {
            if ops.len() != 3 {
                return Err(
                    d.e("setp with a combining predicate or two destinations is not supported")
                );
            }
            let cmp = mods
                .first()
                .and_then(|m| cmp_of(m))
                .ok_or_else(|| d.e("unknown comparison"))?;
            let ty = one_ty()?;
            if mods.len() != 2 + ftz as usize {
                return Err(d.e("setp with .and/.or/.xor combination is not supported"));
            }
            if matches!(ty, Ty::Int(..))
                && matches!(
                    cmp,
                    Cmp::Equ
                        | Cmp::Neu
                        | Cmp::Ltu
                        | Cmp::Leu
                        | Cmp::Gtu
                        | Cmp::Geu
                        | Cmp::Num
                        | Cmp::Nan
                )
            {
                return Err(d.e("unordered comparison on an integer type"));
            }
            if matches!(ty, Ty::F16 | Ty::Bf16 | Ty::Pred) {
                return Err(d.e("unsupported type"));
            }
            Op::Setp {
                cmp,
                ty,
                d: d.reg(&ops[0])?,
                a: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
            }
        }
        "selp" => {
            nops(4)?;
            let ty = one_ty()?;
            Op::Selp {
                w: ty.bits(),
                d: d.reg(&ops[0])?,
                a: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
                p: d.src(&ops[3])?,
            }
        }
        "mov" => {
            nops(2)?;
            let ty = one_ty()?;
            let (dst, s) = (ops[0].as_str(), ops[1].as_str());
            if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                let parts: Vec<Src> = inner
                    .split(',')
                    .map(|p| d.src(p))
                    .collect::<Result<_, _>>()?;
                let pb = ty.bits() / parts.len() as u32;
                if pb * parts.len() as u32 != ty.bits() || pb < 8 {
                    return Err(d.e("bad vector mov"));
                }
                Op::Pack {
                    part_bits: pb,
                    d: d.reg(dst)?,
                    parts,
                }
            } else if let Some(inner) = dst.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                let ds: Vec<Option<u32>> = inner
                    .split(',')
                    .map(|p| {
                        if p.trim() == "_" {
                            Ok(None)
                        } else {
                            d.reg(p).map(Some)
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let pb = ty.bits() / ds.len() as u32;
                if pb * ds.len() as u32 != ty.bits() || pb < 8 {
                    return Err(d.e("bad vector mov"));
                }
                Op::Unpack {
                    part_bits: pb,
                    ds,
                    a: d.src(s)?,
                }
            } else if let Some(sr) = special(s) {
                Op::MovSpecial { d: d.reg(dst)?, sr }
            } else {
                if let Some(idx) = ctx.param_index.get(s) {
                    // The address of a kernel parameter (`__grid_constant__` structs indexed at
                    // run time): an offset into the parameter buffer, usable only by ld.param.
                    if ty.bits() != 64 {
                        return Err(d.e("parameter addresses are 64-bit"));
                    }
                    return Ok(Inst {
                        op: Op::Mov {
                            w: 64,
                            d: d.reg(dst)?,
                            a: Src::I(PARAM_ADDR | (*idx as u64) << 32),
                        },
                        guard,
                        line,
                    });
                }
                Op::Mov {
                    w: ty.bits().max(1),
                    d: d.reg(dst)?,
                    a: d.src(s)?,
                }
            }
        }
        "cvt" => {
            nops(2)?;
            if types.len() != 2 {
                return Err(d.e("cvt needs a destination and a source type"));
            }
            let (dt, st) = (types[0], types[1]);
            let rnds: Vec<Rnd> = mods
                .iter()
                .filter_map(|m| match *m {
                    "rn" => Some(Rnd::Rn),
                    "rz" => Some(Rnd::Rz),
                    "rni" => Some(Rnd::Rni),
                    "rzi" => Some(Rnd::Rzi),
                    "rmi" => Some(Rnd::Rmi),
                    "rpi" => Some(Rnd::Rpi),
                    "rm" | "rp" | "rna" | "rs" => Some(Rnd::None),
                    _ => None,
                })
                .collect();
            if mods
                .iter()
                .any(|m| matches!(*m, "rm" | "rp" | "rna" | "rs" | "relu" | "satfinite"))
            {
                return Err(d.e(
                    "directed/stochastic rounding or relu/satfinite conversions are not supported",
                ));
            }
            let rnd = match rnds.as_slice() {
                [] => Rnd::None,
                [r] => *r,
                _ => return Err(d.e("two rounding modifiers")),
            };
            let sat = has("sat");
            let dst_f = matches!(dt, Ty::F16 | Ty::Bf16 | Ty::F32 | Ty::F64);
            let src_f = matches!(st, Ty::F16 | Ty::Bf16 | Ty::F32 | Ty::F64);
            let ok = match (src_f, dst_f) {
                (false, false) => rnd == Rnd::None && !sat,
                (false, true) => rnd == Rnd::Rn && !sat,
                (true, false) => matches!(rnd, Rnd::Rni | Rnd::Rzi | Rnd::Rmi | Rnd::Rpi) && !sat,
                (true, true) => {
                    if dt == st {
                        matches!(rnd, Rnd::Rni | Rnd::Rzi | Rnd::Rmi | Rnd::Rpi)
                            || (sat && rnd == Rnd::None && dt == Ty::F32)
                    } else if dt.bits() > st.bits() {
                        rnd == Rnd::None && !sat
                    } else {
                        rnd == Rnd::Rn && !sat
                    }
                }
            };
            if !ok || dt == Ty::Pred || st == Ty::Pred || st == Ty::Bf16 && dt != Ty::F32 {
                return Err(d.e("unsupported cvt combination"));
            }
            let a = match special(&ops[1]) {
                Some(sr) if !src_f && !dst_f => {
                    // cvt.u64.u32 %rd, %tid.x -- decode as two steps is not possible here; refuse.
                    return Err(d.e(format!("cvt from special register {sr:?} is not supported")));
                }
                _ => d.src(&ops[1])?,
            };
            Op::Cvt {
                dt,
                st,
                rnd,
                sat,
                ftz,
                d: d.reg(&ops[0])?,
                a,
            }
        }
        "cvta" => {
            nops(2)?;
            if !(has("to") && has("global")) {
                return Err(d.e("only cvta.to.global is supported"));
            }
            Op::Cvta {
                d: d.reg(&ops[0])?,
                a: d.src(&ops[1])?,
            }
        }
        "ld" | "st" => {
            nops(2)?;
            let space = if has("global") && has("nc") && name == "ld" {
                Space::GlobalNc
            } else if has("global") {
                Space::Global
            } else if has("shared") {
                Space::Shared
            } else if has("param") {
                Space::Param
            } else if mods.iter().any(|m| matches!(*m, "const" | "tex" | "surf")) {
                return Err(d.e("state space not supported"));
            } else {
                Space::Global
            };
            if mods
                .iter()
                .any(|m| matches!(*m, "volatile" | "relaxed" | "acquire" | "release"))
            {
                return Err(d.e("memory-ordering qualifiers are not supported"));
            }
            let ty = one_ty()?;
            let n: u8 = if has("v4") {
                4
            } else if has("v2") {
                2
            } else {
                1
            };
            if matches!(ty, Ty::Pred) {
                return Err(d.e("unsupported type"));
            }
            if space == Space::Param && name == "st" {
                return Err(d.e("st.param is not supported"));
            }
            let (data, addr) = if name == "ld" {
                (&ops[0], &ops[1])
            } else {
                (&ops[1], &ops[0])
            };
            let addr = d.addr(addr)?;
            let elems: Vec<String> = match data.strip_prefix('{').and_then(|x| x.strip_suffix('}'))
            {
                Some(inner) => inner.split(',').map(|x| x.trim().to_string()).collect(),
                None => vec![data.clone()],
            };
            if elems.len() != n as usize {
                return Err(d.e("vector width does not match the operand list"));
            }
            if name == "ld" {
                let mut ds = [None; 4];
                for (k, e) in elems.iter().enumerate() {
                    ds[k] = if e == "_" { None } else { Some(d.reg(e)?) };
                }
                Op::Ld {
                    space,
                    ty,
                    n,
                    ds,
                    addr,
                }
            } else {
                let mut vals = [Src::I(0); 4];
                for (k, e) in elems.iter().enumerate() {
                    vals[k] = d.src(e)?;
                }
                Op::St {
                    space,
                    ty,
                    n,
                    vals,
                    addr,
                }
            }
        }
        "bra" => {
            nops(1)?;
            let target = *labels
                .get(ops[0].as_str())
                .ok_or_else(|| d.e("unknown label"))?;
            Op::Bra { target }
        }
        "ret" | "exit" => Op::Exit,
        "bar" | "barrier" => {
            let ok = (name == "bar" && (mods == ["sync"] || mods.is_empty()))
                || (name == "barrier" && mods == ["sync"]);
            if !ok || ops.len() != 1 || parse_imm(&ops[0]) != Some(0) {
                return Err(d.e("only `bar.sync 0` (all threads of the block) is supported"));
            }
            Op::Bar
        }
        "shfl" => {
            nops(5)?;
            if !(has("sync") && has("b32") && mods.len() == 3) {
                return Err(d.e("only shfl.sync.{up,down,bfly,idx}.b32 is supported"));
            }
            let mode = match mods[1] {
                "up" => ShflMode::Up,
                "down" => ShflMode::Down,
                "bfly" => ShflMode::Bfly,
                "idx" => ShflMode::Idx,
                _ => return Err(d.e("unknown shfl mode")),
            };
            let (dd, p) = match ops[0].split_once('|') {
                Some((a, b)) => (d.reg(a)?, Some(d.reg(b)?)),
                None => (d.reg(&ops[0])?, None),
            };
            Op::Shfl {
                mode,
                d: dd,
                p,
                a: d.src(&ops[1])?,
                b: d.src(&ops[2])?,
                c: d.src(&ops[3])?,
                mask: d.src(&ops[4])?,
            }
        }
        "vote" => {
            nops(3)?;
            if mods.first() != Some(&"sync") || mods.len() != 3 {
                return Err(
                    d.e("only vote.sync.{ballot.b32,all.pred,any.pred,uni.pred} is supported")
                );
            }
            let mode = match (mods[1], mods[2]) {
                ("ballot", "b32") => VoteMode::Ballot,
                ("all", "pred") => VoteMode::All,
                ("any", "pred") => VoteMode::Any,
                ("uni", "pred") => VoteMode::Uni,
                _ => return Err(d.e("unsupported vote variant")),
            };
            let (negate, p) = match ops[1].strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, ops[1].as_str()),
            };
            Op::Vote {
                mode,
                d: d.reg(&ops[0])?,
                negate,
                p: d.src(p)?,
                mask: d.src(&ops[2])?,
            }
        }
        "atom" | "red" => {
            if types
                .iter()
                .any(|t| matches!(t, Ty::F16 | Ty::Bf16 | Ty::F32 | Ty::F64))
            {
                return Err(d.e("float atomics are refused (their order is nondeterministic)"));
            }
            return Err(d.e("atomics are not supported"));
        }
        "call" => return Err(d.e("calls are not supported (kernels must be fully inlined)")),
        _ => return Err(d.e(format!("opcode `{opcode}` is not in the allowlist"))),
    };
    Ok(Inst { op, guard, line })
}
