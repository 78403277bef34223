// Test rule for `imageaudit scan --yara`: PHP web shells that run request data.

rule php_eval_request : webshell
{
    meta:
        description = "PHP web shell: evaluates code sent in the request"
    strings:
        $eval = /(eval|assert)\s*\(\s*(base64_decode\s*\(\s*)?\$_(POST|GET|REQUEST|COOKIE)\[/ ascii nocase
    condition:
        filesize < 1MB and $eval
}
