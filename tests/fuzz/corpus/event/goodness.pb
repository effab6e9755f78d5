	]øŠ™¦ÃÚA*

layer0/goodness_pos¯íÅ>