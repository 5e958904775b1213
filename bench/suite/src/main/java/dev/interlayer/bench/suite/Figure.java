package dev.interlayer.bench.suite;

/** One number read out of a run or a summary (a column of the report, a figure to take the median of). */
@FunctionalInterface
interface Figure<T> {
    double of(T t);
}
