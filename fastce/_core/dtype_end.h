#undef T
#undef FC
#undef FC_EXP
#undef FC_LOG1P
#undef FC_T_INF
