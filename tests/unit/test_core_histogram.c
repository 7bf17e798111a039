/*
 * test_core_histogram.c - the log-linear histogram of src/core/histogram.h:
 * its buckets tile the values without gaps, are narrow enough for the error
 * it promises, and count every value recorded from many threads at once;
 * its percentiles come within a bucket of the truth.
 */
#include <pthread.h>
#include <stdlib.h>

#include "histogram.h"
#include "latency.h"
#include "testutil.h"

static void test_values_below_16_have_a_bucket_each(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 16; v++) {
        size_t b = vs_histogram_bucket(v);
        assert_int_equal(b, v);
        assert_int_equal(vs_histogram_bucket_low(b), v);
        assert_int_equal(vs_histogram_bucket_high(b), v + 1);
    }
}

static void test_buckets_tile_the_values_and_are_at_most_an_eighth_wide(void **state)
{
    (void)state;
    for (size_t i = 0; i < VS_HIST_BUCKETS; i++) {
        uint64_t low = vs_histogram_bucket_low(i);
        uint64_t high = vs_histogram_bucket_high(i);
        assert_true(high > low);
        assert_int_equal(vs_histogram_bucket(low), i);
        assert_int_equal(vs_histogram_bucket(high - 1), i);
        if (i + 1 < VS_HIST_BUCKETS)
            assert_int_equal(vs_histogram_bucket(high), i + 1);
        if (low >= 16)
            assert_true((high - low) * 8 <= low);
    }
}

static void test_powers_of_two_are_bucket_edges(void **state)
{
    (void)state;
    for (unsigned p = 4; p < VS_HIST_TOP_BITS; p++) {
        uint64_t v = (uint64_t)1 << p;
        assert_int_equal(vs_histogram_bucket_low(vs_histogram_bucket(v)), v);
    }
}

static void test_values_past_the_top_share_the_last_bucket(void **state)
{
    (void)state;
    assert_int_equal(vs_histogram_bucket((uint64_t)1 << VS_HIST_TOP_BITS), VS_HIST_BUCKETS - 1);
    assert_int_equal(vs_histogram_bucket(UINT64_MAX), VS_HIST_BUCKETS - 1);
    assert_int_equal(vs_histogram_bucket((uint64_t)15 << (VS_HIST_TOP_BITS - 4)),
                     VS_HIST_BUCKETS - 1);
    assert_int_equal(vs_histogram_bucket(((uint64_t)15 << (VS_HIST_TOP_BITS - 4)) - 1),
                     VS_HIST_BUCKETS - 2);
}

static void test_an_empty_histogram_has_zero_percentiles(void **state)
{
    (void)state;
    static struct vs_histogram h;
    struct vs_histogram_snapshot s;
    vs_histogram_read(&h, &s);
    assert_int_equal(s.count, 0);
    assert_true(vs_histogram_percentile(&s, 0.5) == 0.0);
    assert_true(vs_histogram_percentile(&s, 0.99) == 0.0);
}

static void test_percentiles_of_one_small_value_are_exact(void **state)
{
    (void)state;
    static struct vs_histogram h;
    for (int i = 0; i < 100; i++)
        vs_histogram_record(&h, 3);
    struct vs_histogram_snapshot s;
    vs_histogram_read(&h, &s);
    assert_int_equal(s.count, 100);
    assert_int_equal(s.sum, 300);
    assert_true(vs_histogram_percentile(&s, 0.5) == 3.0);
    assert_true(vs_histogram_percentile(&s, 0.999) == 3.0);
}

/* |got - want| within the bucket error (12.5 %) of want. */
static void assert_near(double got, double want)
{
    double err = got > want ? got - want : want - got;
    if (err > want / 8.0)
        fail_msg("percentile %.1f is more than 12.5 %% from %.1f", got, want);
}

static void test_percentiles_of_a_spread_are_within_a_bucket(void **state)
{
    (void)state;
    static struct vs_histogram h;
    /* 1 us to 10 ms in nanoseconds, evenly: the true p50 is ~5 ms. */
    for (uint64_t v = 1; v <= 10000; v++)
        vs_histogram_record(&h, v * 1000);
    struct vs_histogram_snapshot s;
    vs_histogram_read(&h, &s);
    assert_int_equal(s.count, 10000);
    assert_near(vs_histogram_percentile(&s, 0.5), 5000e3);
    assert_near(vs_histogram_percentile(&s, 0.99), 9900e3);
    assert_near(vs_histogram_percentile(&s, 0.999), 9990e3);
    assert_near(vs_histogram_percentile(&s, 0.01), 100e3);
    assert_true(vs_histogram_percentile(&s, 0.5) < vs_histogram_percentile(&s, 0.99));
}

static void test_a_slow_tail_shows_in_p99_and_not_in_p50(void **state)
{
    (void)state;
    static struct vs_histogram h;
    for (int i = 0; i < 980; i++)
        vs_histogram_record(&h, 100000); /* 100 us */
    for (int i = 0; i < 20; i++)
        vs_histogram_record(&h, 50000000); /* 50 ms */
    struct vs_histogram_snapshot s;
    vs_histogram_read(&h, &s);
    assert_near(vs_histogram_percentile(&s, 0.5), 100000);
    assert_near(vs_histogram_percentile(&s, 0.99), 50000000);
}

static void test_count_below_a_power_of_two_counts_smaller_values(void **state)
{
    (void)state;
    static struct vs_histogram h;
    vs_histogram_record(&h, 4095);
    vs_histogram_record(&h, 4096);
    vs_histogram_record(&h, 4097);
    vs_histogram_record(&h, 5);
    struct vs_histogram_snapshot s;
    vs_histogram_read(&h, &s);
    assert_int_equal(vs_histogram_count_below(&s, 4096), 2);
    assert_int_equal(vs_histogram_count_below(&s, 8192), 4);
    assert_int_equal(vs_histogram_count_below(&s, 4), 0);
    assert_int_equal(vs_histogram_count_below(&s, 6), 1);
    assert_int_equal(vs_histogram_count_below(&s, (uint64_t)1 << (VS_HIST_TOP_BITS - 1)), 4);
}

#define THREADS    4
#define PER_THREAD 200000
static struct vs_latency shared_latency;

static void *record_many(void *arg)
{
    uint64_t seed = *(const uint64_t *)arg;
    for (uint64_t i = 0; i < PER_THREAD; i++)
        vs_latency_record(&shared_latency, VS_REQ_HTTP_GET, (seed + i) % 100000);
    return NULL;
}

static void test_records_from_many_threads_are_all_counted(void **state)
{
    (void)state;
    pthread_t t[THREADS];
    uint64_t seeds[THREADS];
    for (int i = 0; i < THREADS; i++) {
        seeds[i] = (uint64_t)i * 7919;
        assert_int_equal(pthread_create(&t[i], NULL, record_many, &seeds[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    uint64_t want_sum = 0;
    for (uint64_t i = 0; i < THREADS; i++)
        for (uint64_t j = 0; j < PER_THREAD; j++)
            want_sum += (i * 7919 + j) % 100000;
    struct vs_histogram_snapshot s;
    vs_histogram_read(&shared_latency.by_kind[VS_REQ_HTTP_GET], &s);
    assert_int_equal(s.count, (uint64_t)THREADS * PER_THREAD);
    assert_int_equal(s.sum, want_sum);
    vs_histogram_read(&shared_latency.by_kind[VS_REQ_HTTP_PUT], &s);
    assert_int_equal(s.count, 0);
}

static void test_kinds_have_their_metrics_names(void **state)
{
    (void)state;
    assert_string_equal(vs_req_kind_name(VS_REQ_HTTP_GET), "http_get");
    assert_string_equal(vs_req_kind_name(VS_REQ_HTTP_LIST), "http_list");
    assert_string_equal(vs_req_kind_name(VS_REQ_RESP_WRITE), "resp_write");
    assert_string_equal(vs_req_kind_name(VS_REQ_KINDS), "?");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_below_16_have_a_bucket_each),
        cmocka_unit_test(test_buckets_tile_the_values_and_are_at_most_an_eighth_wide),
        cmocka_unit_test(test_powers_of_two_are_bucket_edges),
        cmocka_unit_test(test_values_past_the_top_share_the_last_bucket),
        cmocka_unit_test(test_an_empty_histogram_has_zero_percentiles),
        cmocka_unit_test(test_percentiles_of_one_small_value_are_exact),
        cmocka_unit_test(test_percentiles_of_a_spread_are_within_a_bucket),
        cmocka_unit_test(test_a_slow_tail_shows_in_p99_and_not_in_p50),
        cmocka_unit_test(test_count_below_a_power_of_two_counts_smaller_values),
        cmocka_unit_test(test_records_from_many_threads_are_all_counted),
        cmocka_unit_test(test_kinds_have_their_metrics_names),
    };
    return tu_run_tests(tests, argc, argv);
}
