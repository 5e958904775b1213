package dev.interlayer.runtime;

import java.lang.classfile.Attributes;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.CodeBuilder;
import java.lang.classfile.CodeElement;
import java.lang.classfile.CodeModel;
import java.lang.classfile.CodeTransform;
import java.lang.classfile.Label;
import java.lang.classfile.MethodElement;
import java.lang.classfile.MethodBuilder;
import java.lang.classfile.attribute.CodeAttribute;
import java.lang.classfile.attribute.StackMapTableAttribute;
import java.lang.classfile.instruction.BranchInstruction;
import java.lang.classfile.instruction.ExceptionCatch;
import java.lang.classfile.instruction.LabelTarget;
import java.lang.classfile.instruction.LookupSwitchInstruction;
import java.lang.classfile.instruction.SwitchCase;
import java.lang.classfile.instruction.TableSwitchInstruction;
import java.lang.constant.ClassDesc;
import java.lang.constant.ConstantDescs;
import java.lang.constant.MethodTypeDesc;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Puts pre-emption checks ({@link Preemption#check()}) into a module's class as it is defined, so that a hook that runs
 * past its budget can be stopped wherever it spins.
 *
 * <p>A check goes:
 * <ul>
 *   <li>at the entry of every method and constructor: a hook that recurses, or calls a module method from a loop in
 *       the JDK (a stream, {@code forEach}), passes one on every call;
 *   <li>before every backward branch, {@code goto}, conditional or switch, whose target is at or before it: every turn
 *       of every loop passes one. A {@code catch (Throwable t) {}} inside a loop does not keep a stopped hook running:
 *       the loop's backward branch comes after the handler, and its check throws again;
 *   <li>at the entry of an exception handler placed before the code it covers (an exception edge that goes backwards,
 *       which Java compilers do not produce but other bytecode may, making a loop without a backward branch). A handler
 *       that covers itself (the one {@code javac} makes to release a monitor) gets none: its check would catch its own
 *       throw forever.
 * </ul>
 *
 * <p>Each check is one {@code invokestatic} with no arguments and no result: the operand stack and the locals are
 * unchanged, so the class's own stack map frames stay true and are kept as they are (only their offsets move); no
 * class hierarchy is needed, and a jar whose libraries reference classes it does not bundle instruments as well as any.
 *
 * <p>Classes of the host (the JDK, the SDK) are never instrumented; nor are built-in modules, which the host's own
 * class loader defines.
 */
final class PreemptionPoints {

    private static final ClassDesc PREEMPTION = ClassDesc.of(Preemption.CLASS_NAME);
    private static final MethodTypeDesc NO_ARGS = MethodTypeDesc.of(ConstantDescs.CD_void);
    private static final ClassFile CLASS_FILE = ClassFile.of(ClassFile.StackMapsOption.DROP_STACK_MAPS);

    private PreemptionPoints() {}

    /**
     * The class in {@code bytes} with checks added.
     *
     * @throws IllegalArgumentException if the class file cannot be parsed, or a method would outgrow the class file
     *         format's limits with its checks (more than 64 KiB of code)
     */
    static byte[] instrument(byte[] bytes) {
        ClassModel model = CLASS_FILE.parse(bytes);
        return CLASS_FILE.transformClass(model, ClassTransform.transformingMethods(PreemptionPoints::method));
    }

    private static void method(MethodBuilder mb, MethodElement e) {
        if (e instanceof CodeModel code) {
            mb.transformCode(code, new Checks(code));
        } else {
            mb.with(e);
        }
    }

    /** The checks of one method's code; state for one pass over it. */
    private static final class Checks implements CodeTransform {
        private final CodeModel code;
        /** Labels already passed: a branch to one of them goes backwards. */
        private final Set<Label> passed = new HashSet<>();
        /** Handlers that get a check at their entry. */
        private final Set<Label> backwardHandlers;

        Checks(CodeModel code) {
            this.code = code;
            this.backwardHandlers = backwardHandlers(code);
        }

        @Override
        public void atStart(CodeBuilder b) {
            check(b);
        }

        @Override
        public void accept(CodeBuilder b, CodeElement e) {
            switch (e) {
                case LabelTarget t -> {
                    b.with(t);
                    passed.add(t.label());
                    if (backwardHandlers.contains(t.label())) {
                        check(b);
                    }
                }
                case BranchInstruction br -> {
                    if (passed.contains(br.target())) {
                        check(b);
                    }
                    b.with(br);
                }
                case TableSwitchInstruction sw -> {
                    if (backward(sw.defaultTarget(), sw.cases())) {
                        check(b);
                    }
                    b.with(sw);
                }
                case LookupSwitchInstruction sw -> {
                    if (backward(sw.defaultTarget(), sw.cases())) {
                        check(b);
                    }
                    b.with(sw);
                }
                default -> b.with(e);
            }
        }

        @Override
        public void atEnd(CodeBuilder b) {
            // The checks change neither stack nor locals: the method's frames hold as they were, at their labels.
            code.findAttribute(Attributes.stackMapTable()).ifPresent(frames -> b.with(StackMapTableAttribute.of(frames.entries())));
        }

        private boolean backward(Label defaultTarget, List<SwitchCase> cases) {
            if (passed.contains(defaultTarget)) {
                return true;
            }
            for (SwitchCase c : cases) {
                if (passed.contains(c.target())) {
                    return true;
                }
            }
            return false;
        }

        private static void check(CodeBuilder b) {
            b.invokestatic(PREEMPTION, "check", NO_ARGS);
        }

        /** Handlers placed before a range they cover and inside none of their own ranges (see the class comment). */
        private static Set<Label> backwardHandlers(CodeModel code) {
            Set<Label> out = new HashSet<>();
            if (!(code instanceof CodeAttribute at)) {
                return out;
            }
            Set<Label> selfCovering = new HashSet<>();
            for (ExceptionCatch c : code.exceptionHandlers()) {
                int handler = at.labelToBci(c.handler());
                int start = at.labelToBci(c.tryStart());
                int end = at.labelToBci(c.tryEnd());
                if (handler >= start && handler < end) {
                    selfCovering.add(c.handler());
                } else if (handler < start) {
                    out.add(c.handler());
                }
            }
            out.removeAll(selfCovering);
            return out;
        }
    }
}
