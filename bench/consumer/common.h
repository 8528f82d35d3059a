/*
 * What the consumer benchmark's load client (sse-load.c) and publisher
 * (publish.c) both need: their clocks, and how they give up.
 */

#ifndef _BENCH_CONSUMER_COMMON_H_INCLUDED_
#define _BENCH_CONSUMER_COMMON_H_INCLUDED_


#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


/* seconds, for schedules and durations */
static double
mono(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* the wall clock in µs: a message's send time, read on the receiving side */
static int64_t
real_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* a system call that must not fail did: the run is void */
static void
die(const char *what)
{
    perror(what);
    exit(2);
}


#endif /* _BENCH_CONSUMER_COMMON_H_INCLUDED_ */
