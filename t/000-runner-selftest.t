# Self-test of the Test::Nginx::Socket runner against stock nginx only (no
# geostream directives).  It must pass with the real CPAN module and with
# the fallback in t/lib, so it only relies on documented semantics.

use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;

# A TCP listener that never accepts nor answers: connections to it complete
# in the kernel backlog, so nginx proxying to it waits forever and the
# client-side --- timeout fires.  Perl marks it close-on-exec, so the nginx
# we start does not inherit it.
our $Silent = IO::Socket::INET->new(
    Listen    => 5,
    LocalAddr => '127.0.0.1',
    LocalPort => 0,
    Proto     => 'tcp',
) or die "cannot create the silent listener: $!\n";
$ENV{TEST_NGINX_SILENT_PORT} = $Silent->sockport;

$ENV{TEST_NGINX_SELFTEST_GREETING} = 'hello from env';
$ENV{TEST_NGINX_SELFTEST_NOFILE} = 1024;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: return a plain body
--- config
    location = /t {
        return 200 "hi\n";
    }
--- request
GET /t
--- error_code: 200
--- response_body
hi
--- no_error_log
[error]



=== TEST 2: response_headers, exact values and "!" for absence
--- config
    location = /h {
        add_header X-Foo "bar baz";
        return 200 "ok";
    }
--- request
GET /h
--- response_headers
X-Foo: bar baz
Content-Type: text/plain
Content-Length: 2
!X-Absent
--- response_body chomp
ok



=== TEST 3: response_headers_like is anchored (^...$)
--- config
    location = /h {
        add_header X-Num "abc-123";
        return 204;
    }
--- request
GET /h
--- error_code: 204
--- response_headers_like
X-Num: [a-z]+-\d+
Server: nginx.*
--- response_body:



=== TEST 4: 404 with the error logged
--- config
--- request
GET /no-such-file.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory
no-such-file.html



=== TEST 5: --- more_headers reach the server
--- config
    location = /echo_headers {
        return 200 "foo=[$http_x_foo] ua=[$http_user_agent] host=[$host]\n";
    }
--- more_headers
X-Foo: some value
User-Agent: selftest/1.0
--- request
GET /echo_headers
--- response_body
foo=[some value] ua=[selftest/1.0] host=[localhost]



=== TEST 6: request body (trimmed, Content-Length added) read by proxy_pass
--- config
    location = /echo_body {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
        proxy_set_header X-Body $request_body;
        proxy_set_header X-Len $content_length;
        proxy_set_header X-Method $request_method;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
    location = /back {
        return 200 "$http_x_method body=[$http_x_body] len=$http_x_len\n";
    }
--- request
POST /echo_body
hello world
--- response_body
POST body=[hello world] len=11
--- no_error_log
[error]



=== TEST 7: $TEST_NGINX_* expansion in main_config, http_config and config
--- main_config
worker_rlimit_nofile $TEST_NGINX_SELFTEST_NOFILE;
--- http_config
    map $uri $port_seen {
        default "$TEST_NGINX_SERVER_PORT";
    }
--- config
    location = /env {
        return 200 "port=$port_seen greeting=$TEST_NGINX_SELFTEST_GREETING\n";
    }
--- request
GET /env
--- response_body eval
"port=$ENV{TEST_NGINX_SERVER_PORT} greeting=hello from env\n"



=== TEST 8: chunked response is decoded
--- config
    location = /chunked {
        sub_filter 'world' 'nginx';
        sub_filter_types text/plain;
        return 200 "hello world\n";
    }
--- request
GET /chunked
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello nginx



=== TEST 9: HTTP/1.0 request is not chunked
--- config
    location = /chunked {
        sub_filter 'world' 'nginx';
        sub_filter_types text/plain;
        return 200 "hello world\n";
    }
--- request
GET /chunked HTTP/1.0
--- response_headers
!Transfer-Encoding
--- response_body
hello nginx



=== TEST 10: eval'd error_log / no_error_log patterns (arrays and qr//)
--- config
    location = /log {
        return 200 "logged\n";
    }
    location = /old {
        # rewrite_log writes [notice] lines we can look for
        rewrite_log on;
        rewrite ^ /log;
    }
--- request
GET /old
--- response_body
logged
--- error_log eval
[qr/"\^" matches "\/old"/, "rewritten data: \"/log\""]
--- no_error_log eval
[qr/\[(?:error|crit|alert|emerg)\]/, "this text is never logged"]



=== TEST 11: several requests in one block, expectations as arrays
--- config
    location = /a { return 200 "a\n"; }
    location = /b { return 201 "b\n"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 201]
--- response_body eval
["a\n", "b\n"]



=== TEST 12: user_files are written to the html dir; comments in request
--- config
--- user_files
>>> dir/file.txt
file content
--- request
# leading comment lines are ignored
GET /dir/file.txt
--- response_body
file content



=== TEST 13: --- init runs Perl code before the request
--- config
    location = /from_init {
        default_type text/plain;
        alias html/init.txt;
    }
--- init
my $file = html_dir() . "/init.txt";
open my $out, '>', $file or die "cannot write $file: $!";
print $out "written by init\n";
close $out;
--- request
GET /from_init
--- response_body
written by init



=== TEST 14: response_body_like is not anchored and uses /s
--- config
    location = /multi {
        return 200 "line one\nline two\nline three\n";
    }
--- request
GET /multi
--- response_body_like chomp
one.*two



=== TEST 15: --- timeout with --- abort on an upstream that never answers
--- config
    location = /hang {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SILENT_PORT;
    }
--- request
GET /hang
--- timeout: 500ms
--- abort
--- wait: 0.3
--- error_code:
--- response_body:
--- error_log
client prematurely closed connection
--- access_log
"GET /hang HTTP/1.1" 499
--- no_error_log
[error]



=== TEST 16: a config nginx refuses: --- must_die
--- config
    location = /bad {
        return 200 "x" "y" "z";
    }
--- request
GET /bad
--- must_die



=== TEST 17: --- init runs in package Test::Nginx::Util, as the real module evaluates it
--- config
    location = /package {
        default_type text/plain;
        alias html/package.txt;
    }
--- init
open my $out, '>', html_dir() . "/package.txt" or die "cannot write: $!";
print $out __PACKAGE__, "\n";
close $out;
--- request
GET /package
--- response_body
Test::Nginx::Util



=== TEST 18: $TEST_NGINX_* is expanded in a response_body too
--- config
    location = /greeting {
        return 200 "greeting=$TEST_NGINX_SELFTEST_GREETING\n";
    }
--- request
GET /greeting
--- response_body
greeting=$TEST_NGINX_SELFTEST_GREETING
