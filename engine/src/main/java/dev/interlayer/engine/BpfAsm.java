package dev.interlayer.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A tiny eBPF assembler: the few instructions {@link BpfSocketOwners}' programs need, encoded as the kernel reads them
 * ({@code struct bpf_insn}: opcode, destination and source register in one byte, a signed 16-bit offset, a signed 32-bit
 * immediate; little-endian), with named labels for forward jumps. The agent carries no compiler or libbpf: its programs
 * are a few dozen instructions, written here the way the kernel's own samples write them with the BPF_* macros.
 *
 * <p>Registers: r0 return value, r1-r5 call arguments (clobbered by a call), r6-r9 kept across calls, r10 the read-only
 * frame pointer (the stack is the 512 bytes below it). Not thread-safe; one program per instance.
 */
final class BpfAsm {

    static final int R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R6 = 6, R7 = 7, R10 = 10;

    /** Access sizes. */
    static final int W = 0x00, DW = 0x18;

    private static final int LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, JMP = 0x05, ALU64 = 0x07;
    private static final int MEM = 0x60, IMM = 0x00;
    private static final int K = 0x00, X = 0x08;
    private static final int ADD = 0x00, RSH = 0x70, MOV = 0xb0;
    private static final int JA = 0x00, JEQ = 0x10, JNE = 0x50, CALL = 0x80, EXIT = 0x90;
    /** The source register of a 64-bit immediate load that names a map by its file descriptor. */
    private static final int PSEUDO_MAP_FD = 1;

    /** Each instruction as {code, dst, src, off, imm}. */
    private final List<int[]> insns = new ArrayList<>();
    private final Map<String, Integer> labels = new HashMap<>();
    /** Jumps waiting for their label: instruction index → label. */
    private final Map<Integer, String> fixups = new HashMap<>();

    private BpfAsm emit(int code, int dst, int src, int off, int imm) {
        insns.add(new int[] {code, dst, src, off, imm});
        return this;
    }

    /** {@code dst = src} (64-bit). */
    BpfAsm mov(int dst, int src) {
        return emit(ALU64 | MOV | X, dst, src, 0, 0);
    }

    /** {@code dst = imm} (64-bit, sign-extended). */
    BpfAsm movImm(int dst, int imm) {
        return emit(ALU64 | MOV | K, dst, 0, 0, imm);
    }

    /** {@code dst += imm} (64-bit). */
    BpfAsm addImm(int dst, int imm) {
        return emit(ALU64 | ADD | K, dst, 0, 0, imm);
    }

    /** {@code dst >>= imm} (64-bit, logical). */
    BpfAsm rshImm(int dst, int imm) {
        return emit(ALU64 | RSH | K, dst, 0, 0, imm);
    }

    /** {@code dst = *(size *)(src + off)}. */
    BpfAsm load(int size, int dst, int src, int off) {
        return emit(LDX | MEM | size, dst, src, off, 0);
    }

    /** {@code *(size *)(dst + off) = src}. */
    BpfAsm store(int size, int dst, int off, int src) {
        return emit(STX | MEM | size, dst, src, off, 0);
    }

    /** {@code *(size *)(dst + off) = imm}. */
    BpfAsm storeImm(int size, int dst, int off, int imm) {
        return emit(ST | MEM | size, dst, 0, off, imm);
    }

    /** {@code dst = the map whose descriptor is fd} (a two-instruction load the kernel rewrites into the map's address). */
    BpfAsm loadMap(int dst, int fd) {
        emit(LD | DW | IMM, dst, PSEUDO_MAP_FD, 0, fd);
        return emit(0, 0, 0, 0, 0);
    }

    /** Calls helper function {@code id} ({@code enum bpf_func_id}): arguments in r1-r5, result in r0. */
    BpfAsm call(int id) {
        return emit(JMP | CALL, 0, 0, 0, id);
    }

    /** {@code if dst == imm goto label}. */
    BpfAsm jeqImm(int dst, int imm, String label) {
        return jump(JMP | JEQ | K, dst, imm, label);
    }

    /** {@code if dst != imm goto label}. */
    BpfAsm jneImm(int dst, int imm, String label) {
        return jump(JMP | JNE | K, dst, imm, label);
    }

    /** {@code goto label}. */
    BpfAsm ja(String label) {
        return jump(JMP | JA, 0, 0, label);
    }

    private BpfAsm jump(int code, int dst, int imm, String label) {
        fixups.put(insns.size(), label);
        return emit(code, dst, 0, 0, imm);
    }

    /** Places {@code label} at the next instruction. */
    BpfAsm label(String label) {
        if (labels.putIfAbsent(label, insns.size()) != null) throw new IllegalStateException("label " + label + " placed twice");
        return this;
    }

    BpfAsm exit() {
        return emit(JMP | EXIT, 0, 0, 0, 0);
    }

    /** Instructions so far. */
    int size() {
        return insns.size();
    }

    /** The program as the kernel reads it, in {@code arena}: 8 bytes per instruction, jumps resolved. */
    MemorySegment assemble(Arena arena) {
        MemorySegment out = arena.allocate(8L * insns.size(), 8);
        for (int i = 0; i < insns.size(); i++) {
            int[] in = insns.get(i);
            int off = in[3];
            String target = fixups.get(i);
            if (target != null) {
                Integer at = labels.get(target);
                if (at == null) throw new IllegalStateException("jump to label " + target + ", which is never placed");
                off = at - i - 1; // relative to the next instruction
            }
            long base = 8L * i;
            out.set(ValueLayout.JAVA_BYTE, base, (byte) in[0]);
            out.set(ValueLayout.JAVA_BYTE, base + 1, (byte) (in[1] | in[2] << 4));
            out.set(ValueLayout.JAVA_SHORT, base + 2, (short) off);
            out.set(ValueLayout.JAVA_INT, base + 4, in[4]);
        }
        return out;
    }
}
