//! Loads the relocatable ELF object that LLVM emits for one trace into a
//! `TraceMemory`: places each allocated section, applies its relocations,
//! protects the pages and looks up the functions by name. Owns the reading of
//! that object and nothing else: it must not know about traces or LLVM.
//!
//! This is what MCJIT's RuntimeDyld did, cut down to what trace objects
//! contain (x86-64, large code model, no unwind tables): `.text`, constant
//! pools (`.rodata.cst*`) and `R_X86_64_64` relocations against them, against
//! the object's own functions and against C library functions (`fmod`). The
//! PC-relative forms are handled too, in case a later LLVM emits them; any
//! other relocation type is refused, and so the trace is not compiled.

use std::collections::HashMap;
use std::ffi::CString;

use object::elf::{R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE};
use object::read::elf::ElfFile64;
use object::{
    LittleEndian, Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionFlags, SectionIndex,
    SymbolSection,
};

use super::memory::{Kind, TraceMemory};

/// An object placed in memory and ready to run.
pub struct Loaded {
    pub memory: TraceMemory,
    /// The section `load` was asked to keep apart, in memory of its own, if
    /// the object has it.
    pub kept: Option<TraceMemory>,
    /// The object's global functions.
    pub functions: Vec<Function>,
}

/// A function of a loaded object.
pub struct Function {
    pub name: String,
    pub address: usize,
    /// Bytes of machine code.
    pub size: u64,
}

impl Loaded {
    /// The address of function `name`.
    pub fn address(&self, name: &str) -> Option<usize> {
        self.functions.iter().find(|f| f.name == name).map(|f| f.address)
    }
}

/// Places, relocates and protects the object file `bytes` in `memory`,
/// except the section named `apart` (if any), which goes in a memory of its
/// own (`Loaded::kept`) so that it can outlive the rest.
pub fn load(bytes: &[u8], mut memory: TraceMemory, apart: Option<&str>) -> Result<Loaded, String> {
    let file = ElfFile64::<LittleEndian>::parse(bytes).map_err(|e| format!("object file: {e}"))?;
    let mut placed: HashMap<SectionIndex, *mut u8> = HashMap::new();
    let mut kept: Option<TraceMemory> = None;
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else { continue };
        if sh_flags & u64::from(SHF_ALLOC) == 0 {
            continue;
        }
        let kind = if sh_flags & u64::from(SHF_EXECINSTR) != 0 {
            Kind::Code
        } else if sh_flags & u64::from(SHF_WRITE) != 0 {
            Kind::Writable
        } else {
            Kind::ReadOnly
        };
        let size = usize::try_from(section.size()).map_err(|_| "object file: section too large")?;
        let align = usize::try_from(section.align()).map_err(|_| "object file: bad alignment")?;
        let into = match apart {
            Some(name) if section.name() == Ok(name) => kept.get_or_insert_with(|| TraceMemory::new().0),
            _ => &mut memory,
        };
        let at = into.allocate(size, align, kind);
        if at.is_null() {
            return Err(format!("JIT memory: cannot map {size} bytes for {}", section.name().unwrap_or("?")));
        }
        // `data` is empty for a section without contents (`.bss`): the
        // fresh mapping is already zero.
        let data = section.data().map_err(|e| format!("object file: {e}"))?;
        if data.len() > size {
            return Err("object file: section data larger than the section".into());
        }
        // SAFETY: `at` has room for `size >= data.len()` bytes in a writable
        // mapping of ours that nothing else refers to yet.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), at, data.len()) };
        placed.insert(section.index(), at);
    }

    for section in file.sections() {
        let Some(&base) = placed.get(&section.index()) else { continue };
        for (offset, reloc) in section.relocations() {
            let RelocationFlags::Elf { r_type } = reloc.flags() else {
                return Err("object file: not an ELF relocation".into());
            };
            let target = match reloc.target() {
                RelocationTarget::Symbol(i) => {
                    let sym = file.symbol_by_index(i).map_err(|e| format!("object file: {e}"))?;
                    match sym.section() {
                        SymbolSection::Section(s) => {
                            let at = placed.get(&s).ok_or("object file: symbol in a section not loaded")?;
                            *at as u64 + sym.address()
                        }
                        SymbolSection::Undefined => external(sym.name().map_err(|e| format!("object file: {e}"))?)?,
                        SymbolSection::Absolute => sym.address(),
                        _ => return Err("object file: unsupported symbol kind in a relocation".into()),
                    }
                }
                RelocationTarget::Section(s) => {
                    *placed.get(&s).ok_or("object file: relocation to a section not loaded")? as u64
                }
                RelocationTarget::Absolute => 0,
                _ => return Err("object file: unsupported relocation target".into()),
            };
            if reloc.has_implicit_addend() {
                return Err("object file: REL relocations are not supported".into());
            }
            let s_plus_a = target.wrapping_add(reloc.addend() as u64);
            let size = if r_type == R_X86_64_64 { 8 } else { 4 };
            if offset.checked_add(size).is_none_or(|end| end > section.size()) {
                return Err("object file: relocation outside its section".into());
            }
            // SAFETY: `offset + size <= section.size()` was checked, so the
            // patched bytes lie inside the section's placement; it is still
            // writable (not finalized). Unaligned writes: relocations need no
            // alignment.
            unsafe {
                let place = base.add(offset as usize);
                match r_type {
                    R_X86_64_64 => place.cast::<u64>().write_unaligned(s_plus_a),
                    R_X86_64_PC32 | R_X86_64_PLT32 => {
                        let rel = s_plus_a.wrapping_sub(place as u64) as i64;
                        let rel = i32::try_from(rel).map_err(|_| "object file: PC-relative target out of range")?;
                        place.cast::<i32>().write_unaligned(rel);
                    }
                    _ => return Err(format!("object file: unsupported relocation type {r_type}")),
                }
            }
        }
    }
    memory.finalize()?;
    if let Some(k) = kept.as_mut() {
        k.finalize()?;
    }

    let mut functions = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != object::SymbolKind::Text || !sym.is_global() {
            continue;
        }
        let (SymbolSection::Section(s), Ok(name)) = (sym.section(), sym.name()) else { continue };
        if let Some(&at) = placed.get(&s) {
            let address = at as usize + sym.address() as usize;
            functions.push(Function { name: name.to_string(), address, size: sym.size() });
        }
    }
    Ok(Loaded { memory, kept, functions })
}

/// The address of a function the object calls but does not define (a C
/// library function such as `fmod`), from the symbols the process has loaded.
fn external(name: &str) -> Result<u64, String> {
    let c = CString::new(name).map_err(|_| "object file: symbol name with NUL")?;
    // SAFETY: `dlsym` with the default handle only looks the name up; `c`
    // is a valid NUL-terminated string for the duration of the call.
    let at = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    if at.is_null() {
        return Err(format!("JIT: unresolved symbol {name}"));
    }
    Ok(at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_object_file() {
        let (memory, mapped) = TraceMemory::new();
        assert!(load(b"not an ELF file", memory, None).is_err());
        assert_eq!(mapped.get(), 0, "nothing stays mapped");
    }

    #[test]
    fn resolves_c_library_functions() {
        assert!(external("fmod").is_ok());
        assert!(external("no_such_function_in_this_process").is_err());
    }
}
