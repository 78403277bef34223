rule unfinished
{
    strings:
        $a = "x"
    condition:
        $a and
}
