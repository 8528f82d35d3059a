/*
 * The TAP output of the plain C unit tests: "ok N - name" lines and a
 * plan at the end, for prove.
 */

#ifndef _TAP_H_INCLUDED_
#define _TAP_H_INCLUDED_


#include <stdio.h>


static int  tests_run;
static int  tests_failed;


static void
ok(int cond, const char *name)
{
    tests_run++;

    if (!cond) {
        tests_failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests_run, name);
}


/* prints the plan; the exit code of main() */
static int
done_testing(void)
{
    printf("1..%d\n", tests_run);

    return tests_failed ? 1 : 0;
}


#endif /* _TAP_H_INCLUDED_ */
