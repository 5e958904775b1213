package dev.interlayer.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.interlayer.api.DetachReason;
import dev.interlayer.api.InterfaceType;
import dev.interlayer.api.ModuleDescriptor;
import dev.interlayer.api.ModuleEnv;
import dev.interlayer.api.StreamModule;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The lifecycle of docs/architecture.md ("Lifecycle") driven through the registry with fake attachment sites standing in for the engine. */
class LifecycleTest {

    private final ModuleRegistry registry = new ModuleRegistry(3);

    @AfterEach
    void tearDown() {
        registry.close();
    }

    /** A module that counts its init and fini calls. */
    public static final class CountingModule implements StreamModule<Object> {
        final String name;
        final String version;
        final AtomicInteger inits = new AtomicInteger();
        final AtomicInteger finis = new AtomicInteger();
        volatile Runnable onInit = () -> {};
        volatile ModuleEnv env;

        CountingModule(String name, String version) {
            this.name = name;
            this.version = version;
        }

        @Override
        public ModuleDescriptor descriptor() {
            return ModuleDescriptor.builder(name, version).implement(InterfaceType.STREAM, 1, 1).build();
        }

        @Override
        public void init(ModuleEnv env) {
            this.env = env;
            inits.incrementAndGet();
            onInit.run();
        }

        @Override
        public void fini() {
            finis.incrementAndGet();
        }
    }

    private LoadedModule add(CountingModule m) throws ModuleLoadException {
        return registry.add(m, PackageRef.builtin(m.name, getClass().getClassLoader()), null);
    }

    private static RecordingSite attach(LoadedModule m, long id) {
        RecordingSite site = new RecordingSite(id);
        assertThat(m.registerSite(site)).isTrue();
        m.attached();
        return site;
    }

    @Test
    void unregisterAsksEverySiteToDetachAndFiniRunsOnceAfterTheLastDetach() throws Exception {
        CountingModule code = new CountingModule("counting", "1.0.0");
        LoadedModule m = add(code);
        RecordingSite a = attach(m, 1);
        RecordingSite b = attach(m, 2);

        m.unregister();

        assertThat(m.state()).isEqualTo(ModuleState.UNREGISTERING);
        assertThat(a.requests()).containsExactly(DetachReason.UNREGISTERED);
        assertThat(b.requests()).containsExactly(DetachReason.UNREGISTERED);
        assertThat(registry.candidates(new FakeConnection())).isEmpty();

        m.siteDetached(a);
        assertThat(code.finis).hasValue(0);
        m.siteDetached(b);
        assertThat(code.finis).hasValue(1);
        assertThat(m.isUnloaded()).isTrue();
        assertThat(registry.modules()).isEmpty();

        m.siteDetached(b); // a stray second report changes nothing
        m.unregister();
        assertThat(code.finis).hasValue(1);
        assertThat(code.inits).hasValue(1);
        assertThat(m.stats().detaches()).isEqualTo(2);
    }

    @Test
    void finiWaitsForInFlightModuleWideCallsToReturn() throws Exception {
        CountingModule code = new CountingModule("slow-control", "1.0.0");
        LoadedModule m = add(code);
        CountDownLatch inCall = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        AtomicReference<ClassLoader> contextLoader = new AtomicReference<>();
        Thread caller = new Thread(() -> m.callModuleWide("control", () -> {
            contextLoader.set(Thread.currentThread().getContextClassLoader());
            inCall.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return null;
        }));
        caller.start();
        assertThat(inCall.await(5, TimeUnit.SECONDS)).isTrue();

        m.unregister();
        assertThat(code.finis).as("fini must wait for the call in flight").hasValue(0);
        assertThat(m.isUnloaded()).isFalse();

        release.countDown();
        caller.join(5000);

        assertThat(code.finis).hasValue(1);
        assertThat(m.isUnloaded()).isTrue();
        assertThat(contextLoader.get()).isSameAs(m.loader());
        assertThatThrownBy(() -> m.callModuleWide("control", () -> null)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("is unloaded");
    }

    @Test
    void revokeDetachesEverywhereAndUnloadsAfterTheLastDetach() throws Exception {
        CountingModule code = new CountingModule("revoked", "1.0.0");
        LoadedModule m = add(code);
        RecordingSite a = attach(m, 1);

        m.revoke();

        assertThat(m.state()).isEqualTo(ModuleState.REVOKED);
        assertThat(a.requests()).containsExactly(DetachReason.REVOKED);
        assertThat(m.registerSite(new RecordingSite(9))).isFalse();
        m.siteDetached(a);
        assertThat(code.finis).hasValue(1);
        assertThatThrownBy(() -> m.setState(ModuleState.ACTIVE)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void retireUnloadsAtOnceWhenIdleAndAfterTheLastConnectionOtherwise() throws Exception {
        CountingModule idleCode = new CountingModule("idle", "1.0.0");
        LoadedModule idle = add(idleCode);
        idle.retire();
        assertThat(idle.isUnloaded()).isTrue();
        assertThat(idleCode.finis).hasValue(1);

        CountingModule busyCode = new CountingModule("busy", "1.0.0");
        LoadedModule busy = add(busyCode);
        RecordingSite site = attach(busy, 1);
        busy.retire();
        assertThat(busy.state()).isEqualTo(ModuleState.DEPRECATED);
        assertThat(site.requests()).as("retiring keeps existing connections").isEmpty();
        assertThat(busy.registerSite(new RecordingSite(2))).isFalse();
        busy.siteDetached(site);
        assertThat(busyCode.finis).hasValue(1);
    }

    @Test
    void aDeclinedAttachNeedsNoDetach() throws Exception {
        LoadedModule m = add(new CountingModule("picky", "1.0.0"));
        RecordingSite site = new RecordingSite(1);
        assertThat(m.registerSite(site)).isTrue();
        m.declined(site);

        m.retire();

        assertThat(m.isUnloaded()).isTrue();
        assertThat(m.stats().declines()).isEqualTo(1);
    }

    @Test
    void aSecondInstanceWithTheSameNameRetiresTheFirst() throws Exception {
        CountingModule v1Code = new CountingModule("twice", "1.0.0");
        LoadedModule v1 = add(v1Code);
        RecordingSite site = attach(v1, 1);

        LoadedModule v2 = add(new CountingModule("twice", "2.0.0"));

        assertThat(v1.state()).isEqualTo(ModuleState.DEPRECATED);
        assertThat(v2.state()).isEqualTo(ModuleState.ACTIVE);
        assertThat(registry.find("twice")).contains(v2);
        assertThat(registry.candidates(new FakeConnection())).containsExactly(v2);
        v1.siteDetached(site);
        assertThat(v1Code.finis).hasValue(1);
        assertThat(registry.modules()).containsExactly(v2);
    }

    @Test
    void aModuleIsQuarantinedAfterTheConfiguredNumberOfFaults() throws Exception {
        LoadedModule m = add(new CountingModule("faulty", "1.0.0"));
        List<String> changes = new CopyOnWriteArrayList<>();
        registry.addListener(new RegistryListener() {
            @Override
            public void stateChanged(LoadedModule module, ModuleState from, ModuleState to) {
                changes.add(module.name() + ":" + from + "->" + to);
            }
        });

        m.recordFault("onSend", 1, new IllegalStateException("one"));
        m.recordFault("onSend", 2, new IllegalStateException("two"));
        assertThat(m.state()).isEqualTo(ModuleState.ACTIVE);
        m.recordFault("onRecv", 3, "three");

        assertThat(m.state()).isEqualTo(ModuleState.INACTIVE);
        assertThat(changes).containsExactly("faulty:ACTIVE->INACTIVE");
        assertThat(m.lastFault()).isEqualTo("onRecv on connection 3: three");
        assertThat(m.stats().faults()).isEqualTo(3);
        assertThat(registry.candidates(new FakeConnection())).as("an INACTIVE module still attaches, passing traffic").containsExactly(m);

        m.setState(ModuleState.ACTIVE);
        assertThat(m.faults()).isZero();
        m.recordFault("onSend", 4, "again");
        assertThat(m.state()).isEqualTo(ModuleState.ACTIVE);
    }

    @Test
    void candidatesFollowPriorityAndItsLiveChanges() throws Exception {
        LoadedModule a = add(new CountingModule("a", "1.0.0"));
        LoadedModule b = add(new CountingModule("b", "1.0.0"));
        a.setPriority(200);

        assertThat(registry.candidates(new FakeConnection())).containsExactly(b, a);
    }

    @Test
    void aThrowingListenerDoesNotUndoALoad() throws Exception {
        registry.addListener(new RegistryListener() {
            @Override
            public void moduleAdded(LoadedModule module) {
                throw new IllegalStateException("listener bug");
            }
        });

        LoadedModule m = add(new CountingModule("survives", "1.0.0"));

        assertThat(registry.modules()).containsExactly(m);
    }

    @Test
    void theTimerThreadNeverTakesAModulesContextLoader() throws Exception {
        ClassLoader moduleLoader = new ClassLoader(getClass().getClassLoader()) {};
        CountingModule code = new CountingModule("scheduler", "1.0.0");
        CountDownLatch ran = new CountDownLatch(1);
        AtomicReference<ClassLoader> inTask = new AtomicReference<>();
        // The first schedule creates the timer thread, from inside init where the module's loader is the context loader.
        code.onInit = () -> code.env.schedule(Duration.ZERO, () -> {
            inTask.set(Thread.currentThread().getContextClassLoader());
            ran.countDown();
        });

        registry.add(code, PackageRef.builtin("scheduler", moduleLoader), null);

        assertThat(ran.await(5, TimeUnit.SECONDS)).isTrue();
        assertThat(inTask.get()).as("tasks run with the module's loader").isSameAs(moduleLoader);
        // The task's own context loader is restored just after it counted down: poll briefly for that.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        boolean pinned;
        do {
            pinned = Thread.getAllStackTraces().keySet().stream()
                    .anyMatch(t -> t.getName().equals("interlayer-module-timers") && t.getContextClassLoader() == moduleLoader);
        } while (pinned && System.nanoTime() < deadline && sleep());
        assertThat(pinned).as("the timer thread's own context loader is the host's").isFalse();
    }

    private static boolean sleep() {
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return true;
    }
}
